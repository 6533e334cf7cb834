package dev.skiff.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The SDK's class path is what a user's project gets by depending on {@code dev.skiff:skiff-sdk}:
 * none of the host side's native, storage or cloud libraries may be on it.
 */
class SdkDependenciesTest {
  @Test
  void theSdkPullsInNoLmdbJnrFuseOrAwsSdk() {
    for (String c :
        List.of(
            "org.lmdbjava.Env",
            "jnr.ffi.LibraryLoader",
            "dev.skiff.casfs.ImageStore",
            "dev.skiff.casfs.fuse.FuseMount",
            "dev.skiff.runtime.SandboxRuntime",
            "software.amazon.awssdk.core.SdkBytes",
            "software.amazon.awssdk.services.s3.S3AsyncClient")) {
      assertThrows(
          ClassNotFoundException.class,
          () -> Class.forName(c, false, getClass().getClassLoader()),
          c + " is on the SDK's class path");
    }
  }

  static final class Words {
    static int count(String s) {
      return s.split(" ").length;
    }

    int length(String s) {
      return s.length();
    }
  }

  @Test
  void methodReferencesNameTheirMethodAndOverloadsAreRefused() {
    MethodRef ref = MethodRef.of((Handler<String, Integer>) Words::count);
    assertEquals("dev.skiff.sdk.SdkDependenciesTest$Words::count", ref.handler());
    assertEquals("words-count", ref.defaultName());
    MethodRef onInstance = MethodRef.of((InstanceHandler<Words, String, Integer>) Words::length);
    assertEquals("dev.skiff.sdk.SdkDependenciesTest$Words#length", onInstance.handler());
    IllegalArgumentException overloaded =
        assertThrows(
            IllegalArgumentException.class,
            () -> MethodRef.of((Handler<String, Integer>) Integer::parseInt));
    assertTrue(overloaded.getMessage().contains("3 methods named parseInt"));
  }
}
