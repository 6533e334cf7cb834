package dev.skiff.casfs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.image.ImportResult;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.testing.Reads;
import dev.skiff.casfs.testing.Tars;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Garbage collection of the store: what no tag needs goes, what any tag or open mount needs stays.
 */
class GcTest {
  @TempDir Path tmp;

  private static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  private Path image(String name, byte[] base, byte[] app) throws IOException {
    return new Tars()
        .file("base/lib.bin", base, 0644)
        .file("app/app.bin", app, 0644)
        .write(tmp.resolve(name + ".tar"));
  }

  private static void assertReads(ImageStore s, String ref, byte[] base, byte[] app)
      throws IOException {
    try (ImageIndex index = s.openIndex(ImageRef.parse(ref))) {
      ImageFileSystem fs =
          new ImageFileSystem(index, new ChunkReader(s.blobs(), 1 << 20, null, Runnable::run, 0));
      assertArrayEquals(base, Reads.readAll(fs, "base/lib.bin"));
      assertArrayEquals(app, Reads.readAll(fs, "app/app.bin"));
    }
  }

  @Test
  void removesWhatNoTagNeedsAndKeepsWhatTagsAndOpenMountsNeed() throws Exception {
    byte[] base = random(3 << 20, 1);
    byte[] appA = random(2 << 20, 2);
    byte[] appB = random(2 << 20, 3);
    try (ImageStore s = ImageStore.open(tmp.resolve("home"))) {
      s.importImage(image("a", base, appA).toString(), ImageRef.parse("a:1"), ImportProgress.NONE);
      s.importImage(image("b", base, appB).toString(), ImageRef.parse("b:1"), ImportProgress.NONE);
      List<String> packsBefore = s.blobs().list("packs/");
      assertEquals(
          new ImageStore.GcResult(0, 0, 0, 0, java.util.Map.of(), 2, 0, 0, List.of()),
          s.gc(false, Duration.ZERO)); // all tagged

      assertTrue(s.untag(ImageRef.parse("b:1")));
      ImageStore.GcResult dry = s.gc(true, Duration.ZERO);
      assertTrue(
          dry.packs() >= 1 && dry.indexes() == 1 && dry.packBytes() >= 2 << 20, dry.toString());
      assertEquals(packsBefore, s.blobs().list("packs/")); // a dry run removes nothing

      ImageStore.GcResult done = s.gc(false, Duration.ZERO);
      assertEquals(dry, done);
      assertEquals(1, s.blobs().list("indexes/").size());
      assertReads(s, "a:1", base, appA); // a:1 shares the base with b:1 and lost nothing

      // The catalog forgot b's chunks: importing b again stores them again, and it reads whole.
      ImportResult again =
          s.importImage(
              image("b", base, appB).toString(), ImageRef.parse("b:1"), ImportProgress.NONE);
      assertTrue(again.newBytes() >= 2 << 20, "re-import stored " + again.newBytes() + " bytes");
      assertReads(s, "b:1", base, appB);

      // An untagged image that a mount still has open (its index mapped) keeps its blobs.
      Digest a = s.resolve(ImageRef.parse("a:1")).orElseThrow();
      try (ImageIndex open = s.openIndex(a)) {
        assertTrue(s.untag(ImageRef.parse("a:1")));
        ImageStore.GcResult kept = s.gc(false, Duration.ZERO);
        assertEquals(1, kept.inUse(), kept.toString());
        assertEquals(0, kept.indexes());
        s.tag(ImageRef.parse("a:1"), a, "retag", 0);
        assertReads(s, "a:1", base, appA);
      }

      // Leftovers of an interrupted import (a pack and its chunk list, no index) go.
      s.blobs()
          .put(
              "packs/xxh3-128/00112233445566778899aabbccddeeff",
              new ByteArrayInputStream(new byte[100]));
      s.blobs()
          .put(
              "packs/xxh3-128/00112233445566778899aabbccddeeff.idx",
              new ByteArrayInputStream(new byte[10]));
      assertEquals(0, s.gc(false, Duration.ofMinutes(10)).packs()); // too recent: maybe an import's
      assertEquals(1, s.gc(false, Duration.ZERO).packs());
      assertReads(s, "a:1", base, appA);
      assertReads(s, "b:1", base, appB);
    }
  }
}
