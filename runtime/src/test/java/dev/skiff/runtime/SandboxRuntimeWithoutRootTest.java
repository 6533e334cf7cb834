package dev.skiff.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
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
    config = SandboxRuntime.Config.defaults().withRunsc(runsc).withPlatform("ptrace");
  }

  @Test
  void withoutRootOpeningRefusesAtOnceAndSaysWhatToDo() throws Exception {
    Path home = tmp.resolve("home");
    try (ImageStore store = ImageStore.open(home)) {
      SandboxRuntime.RootRequiredException e =
          assertThrows(
              SandboxRuntime.RootRequiredException.class,
              () -> GvisorRuntime.open(store, config, () -> 1000));
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
        SandboxRuntime rt = GvisorRuntime.open(store, config, () -> 0)) {
      assertEquals(List.of(), rt.sandboxes().list());
      assertEquals(new SandboxRuntime.Stats(0, 0), rt.stats());
    }
  }

  @Test
  void theSandboxRegistryAndTheSnapshotStoreNeedNeitherRootNorRunsc() throws Exception {
    Path home = tmp.resolve("home");
    try (ImageStore store = ImageStore.open(home)) {
      Path rootfs = Files.createDirectories(tmp.resolve("rootfs"));
      Files.writeString(rootfs.resolve("f"), "x");
      store.importImage(rootfs.toString(), ImageRef.parse("any:1"), ImportProgress.NONE);
      SandboxRegistry sandboxes = SandboxRegistry.open(home, tmp.resolve("no-runsc-here"));
      assertEquals(List.of(), sandboxes.list());
      assertEquals(List.of(), sandboxes.reap());
      assertFalse(sandboxes.kill("sb-000000000000"));
      SnapshotStore snapshots = new SnapshotStore(store, null);
      assertEquals(List.of(), snapshots.list(ImageSpec.parse("any:1")));
      assertFalse(snapshots.remove(ImageSpec.parse("any:1"), "none"));
      assertThrows(
          NoSuchSnapshotException.class, () -> snapshots.find(ImageSpec.parse("any:1"), "none"));
      assertThrows(
          dev.skiff.casfs.NoSuchImageException.class,
          () -> snapshots.list(ImageSpec.parse("missing:1")));
    }
  }
}
