package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.Tars;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLI's non-mount commands, in process. */
class CliTest {
  @TempDir Path tmp;

  @Test
  void importImagesAndInspect() throws Exception {
    Path rootfs = Files.createDirectories(tmp.resolve("rootfs/app"));
    Files.write(rootfs.resolve("data.bin"), new byte[3 << 20]);
    String home = tmp.resolve("home").toString();
    String out = Cli.run(0, "import", "--store", home, tmp.resolve("rootfs").toString(), "demo:1");
    assertTrue(out.contains("imported") && out.contains("demo:1"), out);
    out = Cli.run(0, "import", "--store", home, tmp.resolve("rootfs").toString(), "demo:2");
    assertTrue(
        out.contains("all shared"), "a second import of the same tree stores nothing: " + out);
    out = Cli.run(0, "images", "--store", home);
    assertTrue(out.contains("demo:1") && out.contains("demo:2") && out.contains("DEDUP"), out);
    out = Cli.run(0, "inspect", "--store", home, "demo:1");
    assertTrue(out.contains("chunks") && out.contains("xxh3-128"), out);

    // rmi untags; gc frees only what no remaining tag needs (demo:2 shares everything).
    assertTrue(Cli.run(0, "rmi", "--store", home, "demo:1").contains("untagged demo:1"));
    assertTrue(Cli.run(1, "rmi", "--store", home, "demo:1").contains("no image demo:1"));
    out = Cli.run(0, "gc", "--store", home, "--dry-run", "--keep-recent", "0s");
    assertTrue(out.contains("would remove 0 packs"), out);
    assertTrue(Cli.run(0, "rmi", "--store", home, "demo:2").contains("untagged demo:2"));
    out = Cli.run(0, "gc", "--store", home);
    assertTrue(out.contains("removed 0 packs"), "blobs of the last 10 minutes stay: " + out);
    out = Cli.run(0, "gc", "--store", home, "--dry-run", "--keep-recent", "0s");
    assertTrue(out.contains("would remove 1 packs") && out.contains("1 indexes"), out);
    out = Cli.run(0, "gc", "--store", home, "--keep-recent", "0s");
    assertTrue(out.contains("removed 1 packs") && out.contains("kept what 0 tags need"), out);
    assertTrue(
        Cli.run(0, "gc", "--store", home, "--keep-recent", "0s").contains("removed 0 packs"));
  }

  @Test
  void gcRemovesTheTracesAndSnapshotsOfARemovedImage() throws Exception {
    Path rootfs = Files.createDirectories(tmp.resolve("rootfs"));
    Files.writeString(rootfs.resolve("f"), "x");
    String home = tmp.resolve("home").toString();
    Cli.run(0, "import", "-q", "--store", home, rootfs.toString(), "gone:1");
    String hex;
    try (dev.skiff.casfs.ImageStore s = dev.skiff.casfs.ImageStore.open(Path.of(home))) {
      var d = s.resolve(dev.skiff.api.ImageRef.parse("gone:1")).orElseThrow();
      hex = d.hex();
      dev.skiff.tracer.TraceStore.save(
          s.blobs(), d, null, new dev.skiff.tracer.Trace(d.algorithm(), 1, java.util.List.of()));
      dev.skiff.tracer.TraceStore.save(
          s.blobs(), d, "alt", new dev.skiff.tracer.Trace(d.algorithm(), 1, java.util.List.of()));
    }
    Path snapshot =
        Files.createDirectories(tmp.resolve("home/snapshots/xxh3-128/" + hex + "/warm"));
    Files.writeString(snapshot.resolve("snapshot.json"), "{}");
    String out = Cli.run(0, "gc", "--store", home, "--keep-recent", "0s");
    assertTrue(
        out.contains("0 traces") && out.contains("0 snapshots"), "kept while tagged: " + out);
    Cli.run(0, "rmi", "--store", home, "gone:1");
    out = Cli.run(0, "gc", "--store", home, "--keep-recent", "0s");
    assertTrue(out.contains("2 traces") && out.contains("1 snapshots"), out);
    assertTrue(!Files.exists(snapshot));
  }

  @Test
  void errorsAreOneLineAndExitNonZero() throws Exception {
    String home = tmp.resolve("home").toString();
    Path bad = new Tars().file("a", "x").hardlink("b", "missing").write(tmp.resolve("bad.tar"));
    String out = Cli.run(1, "import", "--store", home, bad.toString(), "bad:1");
    assertTrue(
        out.startsWith("skiff import: ")
            && out.contains("bad.tar")
            && out.contains("missing target"),
        out);
    assertEquals(1, out.strip().lines().count(), out);
    out = Cli.run(1, "inspect", "--store", home, "nothing:1");
    assertTrue(out.contains("no image nothing:1"), out);
    out = Cli.run(2, "import", "--store", home);
    assertTrue(out.contains("Missing required parameter"), out);
  }

  @Test
  void everyCommandHasHelp() {
    for (String cmd :
        new String[] {
          "import",
          "images",
          "inspect",
          "mount",
          "umount",
          "rmi",
          "gc",
          "run",
          "ps",
          "kill",
          "snapshot",
          "restore"
        }) {
      String out = Cli.run(0, cmd, "--help");
      assertTrue(out.contains("Usage: skiff " + cmd), out);
    }
  }
}
