package dev.skiff.tools;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.Tars;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a user sees of a damaged store, and of imports killed half way: one line per failure, damage
 * listed and never served, one bad image not stopping the others, scratch reclaimed.
 */
class DamagedStoreCliTest {
  @TempDir Path tmp;

  private String home() {
    return tmp.resolve("home").toString();
  }

  private Path indexOf(String ref) throws Exception {
    String out = Cli.run(0, "inspect", "--store", home(), ref);
    String hex = out.replaceAll("(?s).*xxh3-128:([0-9a-f]{32}).*", "$1");
    return tmp.resolve("home/blobs/indexes/xxh3-128/" + hex);
  }

  @Test
  void aDamagedIndexIsListedCheckedAndNeverMounted() throws Exception {
    Cli.run(
        0,
        "import",
        "-q",
        "--store",
        home(),
        new Tars()
            .file("etc/motd", "the bytes that must never come back flipped")
            .write(tmp.resolve("a.tar"))
            .toString(),
        "bad:1");
    Cli.run(
        0,
        "import",
        "-q",
        "--store",
        home(),
        new Tars().file("ok", "fine").write(tmp.resolve("b.tar")).toString(),
        "good:1");
    Path index = indexOf("bad:1");
    byte[] bytes = Files.readAllBytes(index);
    int at = new String(bytes, java.nio.charset.StandardCharsets.ISO_8859_1).indexOf("the bytes");
    try (RandomAccessFile f = new RandomAccessFile(index.toFile(), "rw")) {
      f.seek(at);
      f.write('T');
    }

    String out = Cli.run(0, "images", "--store", home());
    assertTrue(
        out.contains("good:1")
            && out.lines().anyMatch(l -> l.startsWith("bad:1") && l.contains("DAMAGED")),
        out);
    out = Cli.run(1, "inspect", "--store", home(), "bad:1");
    assertTrue(out.contains("is damaged") && out.strip().lines().count() == 1, out);
    out = Cli.run(1, "fsck", "--store", home());
    assertTrue(out.contains("damaged image: bad:1"), out);
    out = Cli.run(0, "gc", "--store", home(), "--keep-recent", "0s");
    assertTrue(out.contains("removed 0 packs") && out.contains("bad:1"), out);

    if (Environment.isRoot() && Files.exists(Path.of("/dev/fuse"))) {
      SkiffProcess mount =
          new SkiffProcess("mount", "--store", home(), "bad:1", tmp.resolve("mnt").toString());
      assertEquals(1, mount.exit(), mount.err());
      assertTrue(mount.err().contains("is damaged"), mount.err());
    }

    Files.setLastModifiedTime(
        index, Files.getLastModifiedTime(index)); // a touch does not make it whole
    Cli.run(0, "rmi", "--store", home(), "bad:1");
    out = Cli.run(0, "fsck", "--store", home(), "--verify-chunks");
    assertTrue(out.contains("0 damaged images"), out);
  }

  @Test
  void importsKilledHalfWayLeaveScratchThatTheNextGcRemoves() throws Exception {
    Path big = tmp.resolve("big.tar");
    Random random = new Random(1);
    byte[] block = new byte[1 << 20];
    try (OutputStream o = Files.newOutputStream(big);
        TarArchiveOutputStream t = new TarArchiveOutputStream(o)) {
      TarArchiveEntry e = new TarArchiveEntry("random.bin");
      e.setSize(384L << 20);
      t.putArchiveEntry(e);
      for (int i = 0; i < 384; i++) {
        random.nextBytes(block);
        t.write(block);
      }
      t.closeArchiveEntry();
    }
    Path scratch = tmp.resolve("home/tmp");
    List<Path> leftBehind = new java.util.ArrayList<>();
    for (int kill = 0; kill < 2; kill++) {
      SkiffProcess p =
          new SkiffProcess("import", "-q", "--store", home(), big.toString(), "big:" + kill);
      long deadline = System.currentTimeMillis() + 60_000;
      // The next import clears what the killed one left, then writes its own.
      while ((leftBehind.stream().anyMatch(Files::exists) || scratchBytes(scratch) < (16 << 20))
          && p.process.isAlive()
          && System.currentTimeMillis() < deadline) {
        Thread.sleep(20);
      }
      assertTrue(p.process.isAlive(), "the import finished before it could be killed: " + p.err());
      p.signal("KILL");
      assertEquals(137, p.exit());
      try (Stream<Path> s = Files.list(scratch)) {
        leftBehind = s.toList();
      }
    }
    long left = scratchBytes(scratch);
    assertTrue(left >= 16 << 20, "a killed import left scratch behind: " + left);
    String out = Cli.run(0, "gc", "--store", home());
    assertTrue(out.contains("of scratch left by killed processes"), out);
    assertEquals(0, scratchBytes(scratch), "gc removed it");
    assertTrue(
        Cli.run(0, "images", "--store", home()).lines().count() == 1, "and no image appeared");
  }

  private static long scratchBytes(Path dir) throws Exception {
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
    }
  }

  @Test
  void aJvmErrorEndsAsOneLine() {
    for (Throwable e : List.of(new OutOfMemoryError("Java heap space"), new StackOverflowError())) {
      ByteArrayOutputStream buf = new ByteArrayOutputStream();
      PrintWriter w = new PrintWriter(buf, true, UTF_8);
      assertEquals(1, SkiffCli.fail("import", e, w));
      String out = buf.toString(UTF_8);
      assertEquals(1, out.strip().lines().count(), out);
      assertTrue(out.startsWith("skiff import: internal error ("), out);
    }
  }

  @Test
  void everyCommandSummaryIsASentence() {
    String out = Cli.run(0, "--help");
    String commands = out.substring(out.indexOf("Commands:"));
    // Each summary (continuation lines joined) ends its sentence.
    String joined = commands.replaceAll("\n {10,}", " ");
    for (String line : joined.lines().skip(1).toList()) {
      assertTrue(line.strip().endsWith("."), "summary stops mid-sentence: " + line);
    }
    for (String cmd : List.of("snapshot", "trace", "cache", "function", "call", "secret")) {
      String sub = Cli.run(0, cmd, "--help");
      String list = sub.substring(sub.indexOf("Commands:")).replaceAll("\n {8,}", " ");
      for (String line : list.lines().skip(1).toList()) {
        assertTrue(line.strip().endsWith("."), "summary stops mid-sentence: " + line);
      }
    }
    assertFalse(out.contains("train-aot"), "the AOT training command is not for users");
  }
}
