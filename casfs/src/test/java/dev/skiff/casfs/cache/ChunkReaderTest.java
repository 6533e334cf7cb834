package dev.skiff.casfs.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.pack.ChunkLocation;
import dev.skiff.casfs.pack.Codec;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.ForwardingBlobStore;
import dev.skiff.casfs.store.MeteredBlobStore;
import dev.skiff.casfs.testing.FakeClock;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ChunkReaderTest {
  @TempDir Path dir;

  MeteredBlobStore store;
  byte[] chunk;
  ChunkLocation loc;

  @BeforeEach
  void setUp() throws IOException {
    store = BlobStores.metered(BlobStores.local(dir.resolve("blobs")));
    chunk = new byte[100_000];
    new SplittableRandom(9).nextBytes(chunk);
    store.put("packs/t/p", new ByteArrayInputStream(chunk));
    Digest d = DigestAlgorithm.XXH3_128.digest(chunk);
    loc = new ChunkLocation(d, "packs/t/p", 0, chunk.length, chunk.length, Codec.NONE);
  }

  private void corruptPack(int at) throws IOException {
    try (var ch = Files.newByteChannel(dir.resolve("blobs/packs/t/p"), StandardOpenOption.WRITE)) {
      ch.position(at);
      ch.write(ByteBuffer.wrap(new byte[] {(byte) (chunk[at] ^ 0xff)}));
    }
  }

  @Test
  void corruptBytesAreNeverServedAndARepairedStoreIsReadAgain() throws IOException {
    corruptPack(500);
    ChunkReader reader = new ChunkReader(store, 1 << 20, null, Runnable::run);
    assertThrows(CorruptChunkException.class, () -> reader.get(loc));
    assertThrows(
        CorruptChunkException.class, () -> reader.get(loc), "a failed fetch is not cached");
    assertEquals(2, reader.stats().corrupt());
    store.put("packs/t/p", new ByteArrayInputStream(chunk));
    assertArrayEquals(chunk, reader.get(loc));
  }

  @Test
  void secondReadIsServedFromMemory() throws IOException {
    ChunkReader reader = new ChunkReader(store, 1 << 20, null, Runnable::run);
    reader.get(loc);
    reader.get(loc);
    assertEquals(1, store.reads());
    assertEquals(1, reader.stats().memoryHits());
  }

  @Test
  void concurrentReadersOfOneChunkShareOneFetch() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    BlobStore slow =
        new ForwardingBlobStore(store) {
          @Override
          public int read(String name, long offset, int length, ByteBuffer dst) throws IOException {
            try {
              release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
              throw new IOException(e);
            }
            return super.read(name, offset, length, dst);
          }
        };
    ChunkReader reader = new ChunkReader(slow, 1 << 20, null, Runnable::run);
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      List<Future<byte[]>> results = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        results.add(pool.submit(() -> reader.get(loc)));
      }
      Thread.sleep(200);
      release.countDown();
      for (Future<byte[]> f : results) {
        assertArrayEquals(chunk, f.get(10, TimeUnit.SECONDS));
      }
    } finally {
      pool.shutdownNow();
    }
    assertEquals(1, store.reads(), "one fetch however many readers ask");
  }

  @Test
  void aChunkListThatFailedIsNotAskedForByEveryReadUntilItsRetryIsDue() throws IOException {
    byte[] pack = new byte[30_000];
    new SplittableRandom(4).nextBytes(pack);
    store.put("packs/t/q", new ByteArrayInputStream(pack)); // and no packs/t/q.idx
    AtomicInteger listReads = new AtomicInteger();
    BlobStore counting =
        new ForwardingBlobStore(store) {
          @Override
          public int read(String name, long offset, int length, ByteBuffer dst) throws IOException {
            if (name.endsWith(".idx")) {
              listReads.incrementAndGet();
            }
            return super.read(name, offset, length, dst);
          }
        };
    FakeClock clock = new FakeClock();
    ChunkReader reader = new ChunkReader(counting, 1 << 20, null, Runnable::run, 1 << 20, clock);
    for (int i = 0; i < 3; i++) {
      byte[] want = java.util.Arrays.copyOfRange(pack, i * 10_000, (i + 1) * 10_000);
      ChunkLocation c =
          new ChunkLocation(
              DigestAlgorithm.XXH3_128.digest(want),
              "packs/t/q",
              i * 10_000L,
              10_000,
              10_000,
              Codec.NONE);
      assertArrayEquals(want, reader.get(c), "read a chunk at a time");
      assertEquals(1, listReads.get(), "the list's failure is remembered");
    }
    clock.advance(ChunkReader.LIST_RETRY);
    byte[] first = java.util.Arrays.copyOf(pack, 10_000);
    reader.invalidateMemory();
    reader.get(
        new ChunkLocation(
            DigestAlgorithm.XXH3_128.digest(first), "packs/t/q", 0, 10_000, 10_000, Codec.NONE));
    assertEquals(2, listReads.get(), "and asked for again once its retry is due");
  }

  @Test
  void theDiskTierServesAfterMemoryIsDroppedAndRejectsCorruptFiles() throws IOException {
    DiskChunkCache disk = new DiskChunkCache(dir.resolve("cache"), 10 << 20);
    ChunkReader reader = new ChunkReader(store, 1 << 20, disk, Runnable::run);
    reader.get(loc);
    reader.invalidateMemory();
    assertArrayEquals(chunk, reader.get(loc));
    assertEquals(1, store.reads());
    assertEquals(1, reader.stats().diskHits());
    // Survives a restart.
    DiskChunkCache reopened = new DiskChunkCache(dir.resolve("cache"), 10 << 20);
    assertEquals(1, reopened.entries());
    // A corrupt cache file is a miss, not wrong bytes.
    Path f;
    try (var s = Files.list(dir.resolve("cache"))) {
      f = s.findFirst().orElseThrow();
    }
    byte[] bad = Files.readAllBytes(f);
    bad[7] ^= 1;
    Files.write(f, bad);
    ChunkReader fresh = new ChunkReader(store, 1 << 20, reopened, Runnable::run);
    assertArrayEquals(chunk, fresh.get(loc));
    assertEquals(0, fresh.stats().diskHits());
    assertEquals(2, store.reads());
  }

  @Test
  void aDiskCacheFileThatCannotBeReadIsAMissNotAFailedRead() throws IOException {
    DiskChunkCache disk = new DiskChunkCache(dir.resolve("cache"), 10 << 20);
    ChunkReader reader = new ChunkReader(store, 1 << 20, disk, Runnable::run);
    reader.get(loc);
    Path f;
    try (var s = Files.list(dir.resolve("cache"))) {
      f = s.findFirst().orElseThrow();
    }
    Files.delete(f);
    Files.createDirectory(f); // reading it fails with EISDIR, as a bad sector fails with EIO
    reader.invalidateMemory();
    assertArrayEquals(chunk, reader.get(loc));
    assertEquals(2, store.reads());
  }

  @Test
  void theDiskTierEvictsLeastRecentlyUsedBeyondItsBound() throws IOException {
    DiskChunkCache disk = new DiskChunkCache(dir.resolve("cache"), 250_000);
    for (int i = 0; i < 4; i++) {
      byte[] b = new byte[100_000];
      new SplittableRandom(i).nextBytes(b);
      disk.put(DigestAlgorithm.XXH3_128.digest(b), b);
    }
    assertEquals(2, disk.entries());
    assertEquals(2, disk.evictions());
    assertEquals(200_000, disk.bytes());
  }
}
