package dev.skiff.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.ImageStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a runtime does for a process that is not root, decided with the effective uid injected: no
 * root, no sandboxes, said at once in a line that says what to do (not deep in runsc); listing and
 * cleaning still work. Runs anywhere: runsc is a script that only tells its version.
 */
class SandboxRuntimeWithoutRootTest {
  @TempDir Path tmp;

  SandboxRuntime.Config config;

  @BeforeEach
  void setUp() throws Exception {
    Path runsc =
        Files.writeString(
            tmp.resolve("runsc"), "#!/bin/sh\necho 'runsc version release-20240807.0'\n");
    Files.setPosixFilePermissions(runsc, PosixFilePermissions.fromString("rwxr-xr-x"));
    config =
        SandboxRuntime.Config.defaults()
            .withRunsc(runsc)
            .withPlatform("ptrace")
            .withNotices(n -> {});
  }

  @Test
  void withoutRootOpeningRefusesAtOnceAndSaysWhatToDo() throws Exception {
    Path home = tmp.resolve("home");
    try (ImageStore store = ImageStore.open(home)) {
      SandboxRuntime.RootRequiredException e =
          assertThrows(
              SandboxRuntime.RootRequiredException.class,
              () -> SandboxRuntime.open(store, config, () -> 1000));
      String m = e.getMessage();
      assertTrue(m.contains("need root") && m.contains("uid 1000") && m.contains("sudo"), m);
      assertFalse(
          m.contains("\n") || m.contains("skiff") || m.contains("--"),
          "one line, no CLI words: " + m);
      assertFalse(Files.exists(home.resolve("run")), "refused before making anything");
    }
  }

  @Test
  void withRootItOpens() throws Exception {
    try (ImageStore store = ImageStore.open(tmp.resolve("home"));
        SandboxRuntime rt = SandboxRuntime.open(store, config, () -> 0)) {
      assertEquals(List.of(), rt.list());
    }
  }

  @Test
  void aBookkeepingRuntimeOpensWithoutRootButStartsNothing() throws Exception {
    try (ImageStore store = ImageStore.open(tmp.resolve("home"));
        SandboxRuntime rt = SandboxRuntime.open(store, config.forBookkeeping(), () -> 1000)) {
      assertEquals(List.of(), rt.list());
      assertEquals(List.of(), rt.reap());
      assertFalse(rt.kill("sb-000000000000"));
      assertThrows(
          SandboxRuntime.RootRequiredException.class,
          () -> rt.run("any:1", SandboxOptions.defaults(), List.of("/bin/true"), false));
      assertThrows(
          SandboxRuntime.RootRequiredException.class,
          () -> rt.create("any:1", SandboxOptions.defaults()));
    }
  }
}
