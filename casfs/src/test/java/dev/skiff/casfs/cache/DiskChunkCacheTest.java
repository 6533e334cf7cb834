package dev.skiff.casfs.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.testing.FakeClock;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DiskChunkCacheTest {
  @TempDir Path dir;

  private static byte[] chunk(int seed) {
    byte[] b = new byte[1000];
    new SplittableRandom(seed).nextBytes(b);
    return b;
  }

  private static Digest digest(byte[] b) {
    return DigestAlgorithm.XXH3_128.digest(b);
  }

  @Test
  void failedWritesPauseWritesForAGrowingWhileAndTheFirstWriteThatWorksEndsThePause()
      throws IOException {
    FakeClock clock = new FakeClock();
    Path cacheDir = dir.resolve("cache");
    DiskChunkCache cache = new DiskChunkCache(cacheDir, 1 << 20, clock);
    Files.delete(cacheDir); // every write now fails, as on a full or failing disk

    assertFalse(cache.put(digest(chunk(1)), chunk(1)));
    assertFalse(cache.put(digest(chunk(2)), chunk(2)));
    assertEquals(1, cache.failedWrites());
    assertEquals(1, cache.skippedWrites(), "no write is tried during the pause");

    clock.advance(DiskChunkCache.FIRST_PAUSE);
    assertFalse(cache.put(digest(chunk(3)), chunk(3)));
    assertEquals(2, cache.failedWrites(), "one try after the pause, which fails again");
    clock.advance(DiskChunkCache.FIRST_PAUSE);
    assertFalse(cache.put(digest(chunk(4)), chunk(4)));
    assertEquals(2, cache.failedWrites(), "the second pause is twice as long");

    Files.createDirectories(cacheDir);
    clock.advance(DiskChunkCache.FIRST_PAUSE);
    assertTrue(cache.put(digest(chunk(5)), chunk(5)));
    assertTrue(cache.put(digest(chunk(6)), chunk(6)), "writes work again without a pause");
    assertArrayEquals(chunk(6), cache.get(digest(chunk(6))));
    assertEquals(2, cache.entries());
  }
}
