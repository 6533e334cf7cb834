package dev.skiff.casfs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.cache.CorruptChunkException;
import dev.skiff.casfs.cache.DiskChunkCache;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.ForwardingBlobStore;
import dev.skiff.casfs.store.MeteredBlobStore;
import dev.skiff.casfs.testing.Reads;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Push, pull and lazy reads against a real S3 API server. */
class RemoteImageTest {
  @TempDir static Path tmp;

  static S3Server server;
  static Path image;
  static byte[][] small = new byte[300][];
  static byte[] big;

  @BeforeAll
  static void setUp() throws IOException {
    server = new S3Server(tmp.resolve("s3"));
    SplittableRandom rnd = new SplittableRandom(21);
    Tars t = new Tars().dir("lib", 0755);
    for (int i = 0; i < small.length; i++) {
      small[i] = new byte[5000 + rnd.nextInt(4000)];
      rnd.nextBytes(small[i]);
      t.file(String.format("lib/m%03d.py", i), small[i], 0644);
    }
    big = new byte[(3 << 20) + 999];
    rnd.nextBytes(big);
    image = t.file("big.bin", big, 0644).write(tmp.resolve("image.tar"));
  }

  @AfterAll
  static void tearDown() {
    if (server != null) {
      server.close();
    }
  }

  private static ImageStore home(String name) throws IOException {
    return ImageStore.open(tmp.resolve(name + "-" + UUID.randomUUID()));
  }

  private static ImageStore imported() throws IOException {
    ImageStore s = home("origin");
    s.importImage(image.toString(), ImageRef.parse("app:1"), ImportProgress.NONE);
    return s;
  }

  @Test
  void pushIsIdempotentAndPullFetchesOnlyTheIndexThenReadsAreLazyAndMerged() throws IOException {
    String prefix = "fleet-" + UUID.randomUUID();
    try (ImageStore origin = imported();
        BlobStore remote = server.store(prefix, tmp.resolve("scratch"), Duration.ofSeconds(30))) {
      ImageStore.PushResult first =
          origin.push(ImageRef.parse("app:1"), remote, ImageStore.PushProgress.NONE);
      assertTrue(first.uploaded() >= 3, "a pack, its chunk list and the index");
      ImageStore.PushResult again =
          origin.push(ImageRef.parse("app:1"), remote, ImageStore.PushProgress.NONE);
      assertEquals(0, again.uploaded(), "a second push uploads nothing");
      assertEquals(first.uploaded(), again.skipped());

      MeteredBlobStore metered = BlobStores.metered(remote);
      try (ImageStore host = home("host")) {
        host.pull(metered, server.location(prefix), ImageRef.parse("app:1"));
        long indexBytes =
            Files.size(
                host.blobs()
                    .localFile(dev.skiff.casfs.store.BlobNames.index(first.index()))
                    .orElseThrow());
        assertTrue(
            metered.bytesRead() < indexBytes + 4096,
            "pull read " + metered.bytesRead() + " bytes: tag + index");
        assertEquals(server.location(prefix), host.remoteOf(ImageRef.parse("app:1")).orElseThrow());
        metered.resetCounters();

        DiskChunkCache disk = new DiskChunkCache(host.chunkCacheDir(), 1L << 30);
        try (ImageIndex index = host.openIndex(ImageRef.parse("app:1"))) {
          ChunkReader reader = new ChunkReader(metered, 64 << 20, disk, Runnable::run, 1 << 20);
          ImageFileSystem fs = new ImageFileSystem(index, reader);
          for (int i = 0; i < small.length; i++) {
            assertArrayEquals(small[i], Reads.readAll(fs, String.format("lib/m%03d.py", i)));
          }
          long gets = metered.reads();
          assertTrue(
              gets < 10,
              "300 small files in " + gets + " GETs: neighbours come along with each read");
          assertArrayEquals(big, Reads.readAll(fs, "big.bin"));

          // A new process on the same host: memory is cold, the disk cache is warm.
          metered.resetCounters();
          ChunkReader next =
              new ChunkReader(
                  metered,
                  64 << 20,
                  new DiskChunkCache(host.chunkCacheDir(), 1L << 30),
                  Runnable::run,
                  1 << 20);
          ImageFileSystem fs2 = new ImageFileSystem(index, next);
          assertArrayEquals(small[7], Reads.readAll(fs2, "lib/m007.py"));
          assertArrayEquals(big, Reads.readAll(fs2, "big.bin"));
          assertEquals(0, metered.reads(), "served from the disk cache");
          assertTrue(next.stats().diskHits() > 0);
        }
      }
    }
  }

  @Test
  void theIndexTravelsCompressedAndBucketsOfOlderPushesStillPull() throws IOException {
    String prefix = "compressed-" + UUID.randomUUID();
    try (ImageStore origin = imported();
        BlobStore remote = server.store(prefix, tmp.resolve("scratch"), Duration.ofSeconds(30))) {
      ImageStore.PushResult pushed =
          origin.push(ImageRef.parse("app:1"), remote, ImageStore.PushProgress.NONE);
      String plain = dev.skiff.casfs.store.BlobNames.index(pushed.index());
      long local = Files.size(origin.blobs().localFile(plain).orElseThrow());
      long wire =
          remote
              .size(dev.skiff.casfs.store.BlobNames.compressedIndex(pushed.index()))
              .orElseThrow();
      assertTrue(wire * 3 < local, "index on the wire " + wire + " bytes, " + local + " as LMDB");
      assertFalse(remote.exists(plain), "only the compressed form is pushed");
      try (ImageStore host = home("host")) {
        MeteredBlobStore metered = BlobStores.metered(remote);
        host.pull(metered, server.location(prefix), ImageRef.parse("app:1"));
        assertTrue(metered.bytesRead() < wire + 4096, "pull read " + metered.bytesRead());
        try (ImageIndex index = host.openIndex(ImageRef.parse("app:1"))) {
          ImageFileSystem fs =
              new ImageFileSystem(index, new ChunkReader(remote, 1 << 20, null, Runnable::run, 0));
          assertArrayEquals(small[3], Reads.readAll(fs, "lib/m003.py"));
        }
      }
      // A bucket an older version pushed to holds the plain index only.
      remote.delete(dev.skiff.casfs.store.BlobNames.compressedIndex(pushed.index()));
      remote.putFile(plain, origin.blobs().localFile(plain).orElseThrow());
      try (ImageStore host = home("host")) {
        host.pull(remote, server.location(prefix), ImageRef.parse("app:1"));
        assertEquals(pushed.index(), host.resolve(ImageRef.parse("app:1")).orElseThrow());
      }
      // A compressed index whose bytes are not what the digest names is refused.
      remote.put(
          dev.skiff.casfs.store.BlobNames.compressedIndex(pushed.index()),
          new java.io.ByteArrayInputStream(com.github.luben.zstd.Zstd.compress(new byte[8192])));
      try (ImageStore host = home("host")) {
        IOException e =
            assertThrows(
                IOException.class,
                () -> host.pull(remote, server.location(prefix), ImageRef.parse("app:1")));
        assertTrue(e.getMessage().contains("corrupt"), e.getMessage());
        assertTrue(host.images().isEmpty());
      }
    }
  }

  @Test
  void anInterruptedPushLeavesNoTagAndARerunFinishesIt() throws IOException {
    String prefix = "interrupted-" + UUID.randomUUID();
    try (ImageStore origin = imported();
        BlobStore remote = server.store(prefix, tmp.resolve("scratch"), Duration.ofSeconds(30))) {
      AtomicInteger puts = new AtomicInteger();
      BlobStore flaky =
          new ForwardingBlobStore(remote) {
            @Override
            public void putFile(String name, Path file) throws IOException {
              if (puts.incrementAndGet() > 1) {
                throw new IOException("connection reset (simulated)");
              }
              super.putFile(name, file);
            }
          };
      assertThrows(
          IOException.class,
          () -> origin.push(ImageRef.parse("app:1"), flaky, ImageStore.PushProgress.NONE));
      assertTrue(remote.list("refs/").isEmpty(), "no remote tag before every blob is there");
      ImageStore.PushResult rest =
          origin.push(ImageRef.parse("app:1"), remote, ImageStore.PushProgress.NONE);
      assertEquals(1, rest.skipped(), "what the interrupted push sent is not sent again");
      assertEquals(List.of("refs/app/1"), remote.list("refs/"));
    }
  }

  @Test
  void corruptOrTruncatedObjectsAreErrorsNotWrongBytes() throws IOException {
    String prefix = "corrupt-" + UUID.randomUUID();
    try (ImageStore origin = imported();
        BlobStore remote = server.store(prefix, tmp.resolve("scratch"), Duration.ofSeconds(30));
        ImageStore host = home("corrupt-host")) {
      origin.push(ImageRef.parse("app:1"), remote, ImageStore.PushProgress.NONE);
      host.pull(remote, server.location(prefix), ImageRef.parse("app:1"));
      String pack;
      try (ImageIndex index = host.openIndex(ImageRef.parse("app:1"))) {
        pack = index.packs().get(0);
      }
      long packSize = Files.size(origin.blobs().localFile(pack).orElseThrow());
      Path serverCopy;
      try (Stream<Path> files = Files.walk(server.root())) {
        serverCopy =
            files
                .filter(Files::isRegularFile)
                .filter(
                    p -> {
                      try {
                        return Files.size(p) == packSize;
                      } catch (IOException e) {
                        return false;
                      }
                    })
                .findFirst()
                .orElseThrow(() -> new AssertionError("the server's copy of the pack"));
      }
      byte[] good = Files.readAllBytes(serverCopy);
      byte[] flipped = good.clone();
      for (int i = 0; i < flipped.length; i += 512) {
        flipped[i] ^= 0x01;
      }
      try (ImageIndex index = host.openIndex(ImageRef.parse("app:1"))) {
        Files.write(serverCopy, flipped);
        ImageFileSystem fs =
            new ImageFileSystem(
                index, new ChunkReader(remote, 64 << 20, null, Runnable::run, 1 << 20));
        assertThrows(CorruptChunkException.class, () -> Reads.readAll(fs, "big.bin"));
        assertThrows(CorruptChunkException.class, () -> Reads.readAll(fs, "lib/m000.py"));

        Files.write(serverCopy, java.util.Arrays.copyOf(good, good.length / 2));
        IOException e = assertThrows(IOException.class, () -> Reads.readAll(fs, "big.bin"));
        assertFalse(e instanceof CorruptChunkException);
        assertTrue(e.getMessage().contains(pack), e.getMessage());

        Files.write(serverCopy, good);
        assertArrayEquals(
            big, Reads.readAll(fs, "big.bin"), "the server's copy is repaired: reads work again");
      } finally {
        Files.write(serverCopy, good);
      }
    }
  }
}
