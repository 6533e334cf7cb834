package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.fuse.MountTable;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code skiff mount} as a user runs it: in its own process, stopped by Ctrl-C, umount or kill -9.
 */
@Tag("fuse")
class MountLifecycleTest {
  @TempDir static Path tmp;

  static Path home;

  @BeforeAll
  static void image() throws IOException {
    Environment.requireFuse();
    home = tmp.resolve("home");
    Path tar = new Tars().file("hello.txt", "hello from skiff\n").write(tmp.resolve("img.tar"));
    try (ImageStore s = ImageStore.open(home)) {
      s.importImage(tar.toString(), ImageRef.parse("life:1"), ImportProgress.NONE);
    }
  }

  @org.junit.jupiter.api.AfterAll
  static void unmountLeftovers() throws IOException {
    for (MountTable.MountEntry e : MountTable.read()) {
      if (e.mountpoint().startsWith(tmp) && e.fsType().startsWith("fuse")) {
        MountTable.unmount(e.mountpoint());
      }
    }
  }

  @Test
  void aMountLeftByAKilledProcessIsClearedByTheNextMount() throws Exception {
    Path mp = tmp.resolve("killed");
    MountProcess first =
        new MountProcess(mp, java.util.Map.of(), "--store", home.toString(), "life:1");
    assertEquals("hello from skiff\n", Files.readString(mp.resolve("hello.txt")));
    first.process.destroyForcibly(); // SIGKILL: no shutdown hook runs
    first.process.waitFor(30, TimeUnit.SECONDS);
    assertNotNull(MountTable.fuseMountAt(mp), "the dead mount is still in the mount table");
    assertTrue(MountTable.isStale(mp), "and its endpoint is not connected");

    MountProcess second =
        new MountProcess(mp, java.util.Map.of(), "--store", home.toString(), "life:1");
    assertTrue(second.output().contains("stale FUSE mount"), second.output());
    assertEquals("hello from skiff\n", Files.readString(mp.resolve("hello.txt")));

    assertEquals(0, SkiffCli.execute("umount", mp.toString()));
    assertTrue(second.process.waitFor(30, TimeUnit.SECONDS), "skiff umount ends the mount process");
    assertEquals(0, second.process.exitValue(), second.output());
    assertTrue(second.output().contains("unmounted"), second.output());
    assertNull(MountTable.fuseMountAt(mp));
  }

  @Test
  void ctrlCUnmountsCleanly() throws Exception {
    Path mp = tmp.resolve("interrupted");
    MountProcess m = new MountProcess(mp, java.util.Map.of(), "--store", home.toString(), "life:1");
    assertEquals("hello from skiff\n", Files.readString(mp.resolve("hello.txt")));
    SkiffProcess.assumeSigintDelivered();
    new ProcessBuilder("kill", "-INT", Long.toString(m.process.pid())).start().waitFor();
    assertTrue(m.process.waitFor(30, TimeUnit.SECONDS), "Ctrl-C ends the mount process");
    assertNull(MountTable.fuseMountAt(mp), "and leaves no mount behind:\n" + m.output());
    assertTrue(
        m.output().contains("unmounted"), "and the summary is printed before exit:\n" + m.output());
    assertTrue(Files.isDirectory(mp));
  }

  @Test
  void mountingOverALiveMountIsRefused() throws Exception {
    Path mp = tmp.resolve("twice");
    MountProcess m = new MountProcess(mp, java.util.Map.of(), "--store", home.toString(), "life:1");
    try {
      assertEquals(
          1, SkiffCli.execute("mount", "--store", home.toString(), "life:1", mp.toString()));
    } finally {
      assertEquals(0, SkiffCli.execute("umount", mp.toString()));
      m.process.waitFor(30, TimeUnit.SECONDS);
    }
  }
}
