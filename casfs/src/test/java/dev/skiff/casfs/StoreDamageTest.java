package dev.skiff.casfs;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.image.ImportResult;
import dev.skiff.casfs.index.DamagedIndexException;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.testing.Reads;
import dev.skiff.casfs.testing.Tars;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A damaged store is noticed and never serves wrong bytes: a corrupted or truncated index is an
 * error that names it (not content, not a JVM crash), one damaged image does not stop the others, a
 * lost pack is noticed and not deduplicated against, and scratch left by killed imports goes.
 */
class StoreDamageTest {
  private static final String SMALL = "small file bytes live inline in the index";

  @TempDir Path tmp;

  ImageStore store;
  byte[] big;

  @BeforeEach
  void open() throws IOException {
    store = ImageStore.open(tmp.resolve("home"));
    big = new byte[3 << 20];
    new Random(7).nextBytes(big);
  }

  @AfterEach
  void close() throws IOException {
    store.close();
  }

  private Digest importImage(String ref, String small) throws IOException {
    Path tar =
        new Tars()
            .file("etc/small", small)
            .file("big.bin", big, 0644)
            .symlink("link", "etc/small")
            .write(tmp.resolve(ref.replace(':', '-') + "-" + System.nanoTime() + ".tar"));
    return store.importImage(tar.toString(), ImageRef.parse(ref), ImportProgress.NONE).index();
  }

  private Path indexFile(Digest d) {
    return store.blobs().localFile(BlobNames.index(d)).orElseThrow();
  }

  private void assertReads(String ref, String small) throws IOException {
    try (ImageIndex index = store.openIndex(ImageRef.parse(ref))) {
      ImageFileSystem fs =
          new ImageFileSystem(
              index, new ChunkReader(store.blobs(), 1 << 20, null, Runnable::run, 0));
      assertEquals(small, new String(Reads.readAll(fs, "etc/small"), UTF_8));
      assertArrayEquals(big, Reads.readAll(fs, "big.bin"));
    }
  }

  private ImageInfo info(String ref) throws IOException {
    return store.images().stream()
        .filter(i -> i.ref().toString().equals(ref))
        .findFirst()
        .orElseThrow();
  }

  /** Flips one byte of {@code file} where {@code text} is stored. */
  private static void flip(Path file, String text) throws IOException {
    byte[] bytes = Files.readAllBytes(file);
    byte[] needle = text.getBytes(UTF_8);
    for (int i = 0; i + needle.length <= bytes.length; i++) {
      if (java.util.Arrays.equals(bytes, i, i + needle.length, needle, 0, needle.length)) {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
          f.seek(i);
          f.write(bytes[i] ^ 0x20);
        }
        return;
      }
    }
    throw new AssertionError("'" + text + "' is not in " + file);
  }

  @Test
  void aCorruptedIndexIsAnErrorNeverContent() throws IOException {
    Digest d = importImage("flip:1", SMALL);
    importImage("ok:1", "another image");
    assertReads("flip:1", SMALL); // opened once: verified, and the verification remembered

    flip(indexFile(d), SMALL);
    DamagedIndexException e = assertThrows(DamagedIndexException.class, () -> store.openIndex(d));
    assertTrue(e.getMessage().contains("does not match its digest"), e.getMessage());
    assertTrue(info("flip:1").isDamaged(), "images lists it as damaged");
    assertFalse(info("ok:1").isDamaged());
    assertReads("ok:1", "another image");
    assertFalse(store.fsck(false).clean());
  }

  @Test
  void aTruncatedOrEmptyIndexIsAnErrorNotACrash() throws IOException {
    Digest d = importImage("cut:1", SMALL);
    importImage("ok:1", "another image");
    Path file = indexFile(d);
    long size = Files.size(file);
    for (long cut : new long[] {size / 2 / 4096 * 4096, size - 100, 4096, 100, 0}) {
      try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
        f.setLength(cut);
      }
      // Opened past the digest check too: the structure check alone keeps LMDB off a short file.
      DamagedIndexException direct =
          assertThrows(DamagedIndexException.class, () -> ImageIndex.open(file).close());
      assertTrue(
          direct.getMessage().contains("truncated")
              || direct.getMessage().contains("empty")
              || direct.getMessage().contains("not an image index"),
          cut + ": " + direct.getMessage());
      assertThrows(DamagedIndexException.class, () -> store.openIndex(d));
      assertTrue(info("cut:1").isDamaged(), "images lists it as damaged at " + cut + " bytes");
      assertReads("ok:1", "another image");

      ImageStore.GcResult gc = store.gc(false, Duration.ZERO); // carries on, keeps every pack
      assertEquals(0, gc.packs(), gc.toString());
      assertTrue(
          gc.problems().stream().anyMatch(p -> p.contains("cut:1") && p.contains("damaged")),
          gc.toString());
    }
    assertReads("ok:1", "another image");
  }

  @Test
  void anUnreadableTagDoesNotStopTheOthers() throws IOException {
    importImage("ok:1", SMALL);
    store.blobs().put("refs/junk/1", new ByteArrayInputStream("{\"index\": 12".getBytes(UTF_8)));
    store.blobs().put("refs/junk/2", new ByteArrayInputStream("[]".getBytes(UTF_8)));
    List<ImageInfo> images = store.images();
    assertEquals(3, images.size());
    assertTrue(info("junk:1").isDamaged() && info("junk:2").isDamaged());
    assertThrows(DamagedTagException.class, () -> store.resolve(ImageRef.parse("junk:1")));

    assertTrue(store.untag(ImageRef.parse("ok:1")));
    ImageStore.GcResult gc = store.gc(false, Duration.ZERO);
    assertEquals(
        0, gc.packs() + gc.indexes(), "a tag that cannot be read could name anything: " + gc);
    assertEquals(
        2, gc.problems().stream().filter(p -> p.contains("unreadable")).count(), gc.toString());
  }

  @Test
  void aLostPackIsNoticedForgottenAndStoredAgain() throws IOException {
    Digest d = importImage("lost:1", SMALL);
    List<String> packs;
    try (ImageIndex index = store.openIndex(d)) {
      packs = index.packs();
    }
    assertEquals(1, packs.size());
    store.blobs().delete(packs.get(0));

    assertTrue(info("lost:1").damage().contains("packs are missing"), info("lost:1").toString());
    ImageStore.FsckResult fsck = store.fsck(false);
    assertEquals(List.of(packs.get(0)), fsck.missingPacks());
    assertTrue(fsck.chunksForgotten() >= 3, fsck.toString());
    assertEquals(1, fsck.damagedImages().size());

    ImportResult again =
        store.importImage(
            new Tars()
                .file("etc/small", SMALL)
                .file("big.bin", big, 0644)
                .symlink("link", "etc/small")
                .write(tmp.resolve("again.tar"))
                .toString(),
            ImageRef.parse("lost:1"),
            ImportProgress.NONE);
    assertTrue(again.newChunks() >= 3, "the lost chunks were stored again: " + again.newChunks());
    assertReads("lost:1", SMALL);
    assertTrue(store.fsck(true).clean());
  }

  @Test
  void aReimportDoesNotDeduplicateAgainstALostPackEvenWithoutACheck() throws IOException {
    Digest d = importImage("lost:1", SMALL);
    try (ImageIndex index = store.openIndex(d)) {
      store.blobs().delete(index.packs().get(0));
    }
    assertTrue(store.untag(ImageRef.parse("lost:1")));
    ImportResult again =
        store.importImage(
            new Tars().file("big.bin", big, 0644).write(tmp.resolve("again.tar")).toString(),
            ImageRef.parse("new:1"),
            ImportProgress.NONE);
    assertEquals(3, again.newChunks());
    try (ImageIndex index = store.openIndex(again.index())) {
      ImageFileSystem fs =
          new ImageFileSystem(
              index, new ChunkReader(store.blobs(), 1 << 20, null, Runnable::run, 0));
      assertArrayEquals(big, Reads.readAll(fs, "big.bin"));
    }
    ImageStore.GcResult gc = store.gc(false, Duration.ZERO);
    assertTrue(gc.problems().isEmpty(), gc.toString());
  }

  @Test
  void aCorruptChunkIsFoundByAFullCheckAndStoredAgain() throws IOException {
    Digest d = importImage("rot:1", SMALL);
    String pack;
    try (ImageIndex index = store.openIndex(d)) {
      pack = index.packs().get(0);
    }
    Path packFile = store.blobs().localFile(pack).orElseThrow();
    try (RandomAccessFile f = new RandomAccessFile(packFile.toFile(), "rw")) {
      f.seek(1 << 20); // inside the second chunk
      int b = f.read();
      f.seek(1 << 20);
      f.write(b ^ 1);
    }
    assertTrue(store.fsck(false).clean(), "a quick check does not read chunks");
    ImageStore.FsckResult full = store.fsck(true);
    assertEquals(1, full.corruptChunks().size(), full.toString());
    assertEquals(1, full.chunksForgotten());
    assertTrue(full.damagedImages().get(0).contains("rot:1"), full.toString());
    ImportResult again =
        store.importImage(
            new Tars().file("big.bin", big, 0644).write(tmp.resolve("b.tar")).toString(),
            ImageRef.parse("fixed:1"),
            ImportProgress.NONE);
    assertEquals(1, again.newChunks(), "only the corrupt chunk is stored again");
  }

  @Test
  void scratchOfProcessesThatAreGoneIsRemovedByGcAndTheNextImport() throws Exception {
    Path tmpDir = store.home().resolve("tmp");
    Path mine = store.scratch();
    Files.writeString(mine.resolve("in-use"), "mine");
    Process p = new ProcessBuilder("true").start();
    p.waitFor();
    Owner dead = new Owner(p.pid(), "2020-01-01T00:00:00Z"); // a process that has ended
    Path left = Files.createDirectories(tmpDir.resolve(dead.tag() + ".1"));
    Files.write(left.resolve("pack-123.tmp"), new byte[1 << 20]);
    Path other =
        Files.createDirectories(tmpDir.resolve(Owner.current().tag() + ".999")); // a live process's

    ImageStore.GcResult gc = store.gc(false, Duration.ofMinutes(10));
    assertEquals(1 << 20, gc.scratchBytes(), gc.toString());
    assertFalse(Files.exists(left));
    assertTrue(Files.exists(mine.resolve("in-use")) && Files.exists(other));

    Path again = Files.createDirectories(tmpDir.resolve(dead.tag() + ".2"));
    Files.write(again.resolve("index-1.final"), new byte[10]);
    importImage("next:1", SMALL);
    assertFalse(Files.exists(again), "the next import clears it too");

    store.close();
    assertFalse(Files.exists(mine), "a store removes its own scratch when it closes");
    store = ImageStore.open(tmp.resolve("home"));
  }
}
