package dev.skiff.casfs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.cache.DiskChunkCache;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.FakeClock;
import dev.skiff.casfs.testing.Reads;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A disk cache on a filesystem that is full: reads from the store are served all the same. */
class FullDiskCacheTest {
  @TempDir static Path tmp;

  static S3Server server;
  static ImageStore host;
  static byte[][] small = new byte[120][];
  Path tmpfs;

  @BeforeAll
  static void setUp() throws IOException {
    server = new S3Server(tmp.resolve("s3"));
    SplittableRandom rnd = new SplittableRandom(17);
    Tars t = new Tars().dir("lib", 0755);
    for (int i = 0; i < small.length; i++) {
      small[i] = new byte[5000 + rnd.nextInt(4000)];
      rnd.nextBytes(small[i]);
      t.file(String.format("lib/m%03d.py", i), small[i], 0644);
    }
    Path image = t.write(tmp.resolve("image.tar"));
    try (ImageStore origin = ImageStore.open(tmp.resolve("origin"));
        BlobStore remote = server.store("full", tmp.resolve("scratch"), Duration.ofSeconds(30))) {
      origin.importImage(image.toString(), ImageRef.parse("app:1"), ImportProgress.NONE);
      origin.push(ImageRef.parse("app:1"), remote, ImageStore.PushProgress.NONE);
      host = ImageStore.open(tmp.resolve("host"));
      host.pull(remote, server.location("full"), ImageRef.parse("app:1"));
    }
  }

  @AfterAll
  static void tearDown() throws IOException {
    if (host != null) {
      host.close();
    }
    if (server != null) {
      server.close();
    }
  }

  /** A 256 KiB tmpfs, mounted for this test only. */
  private Path mountTinyTmpfs() throws IOException, InterruptedException {
    Environment.requireRoot("to mount a tmpfs that can fill up");
    tmpfs = Files.createDirectories(tmp.resolve("tiny"));
    Process p =
        new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", tmpfs.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes());
    assertEquals(0, p.waitFor(), "mount tmpfs: " + out);
    return tmpfs;
  }

  /** Writes a file until the filesystem has no room left. */
  private static Path fill(Path dir) throws IOException {
    Path filler = dir.resolve("filler");
    try (OutputStream out = Files.newOutputStream(filler)) {
      byte[] block = new byte[4096];
      while (true) {
        out.write(block);
        out.flush();
      }
    } catch (IOException full) {
      assertTrue(String.valueOf(full.getMessage()).contains("No space left"), full.toString());
    }
    return filler;
  }

  @AfterEach
  void unmount() throws Exception {
    if (tmpfs != null) {
      new ProcessBuilder("umount", tmpfs.toString()).inheritIO().start().waitFor();
    }
  }

  @Test
  void chunksFromTheStoreAreServedWhenTheDiskCacheCannotStoreThem() throws Exception {
    Path dir = mountTinyTmpfs();
    Path cacheDir = Files.createDirectories(dir.resolve("chunks"));
    Path filler = fill(dir);
    FakeClock clock = new FakeClock();
    DiskChunkCache disk = new DiskChunkCache(cacheDir, 1L << 30, clock);
    try (BlobStore remote = server.store("full", tmp.resolve("scratch"), Duration.ofSeconds(30));
        ImageIndex index = host.openIndex(ImageRef.parse("app:1"))) {
      ChunkReader reader = new ChunkReader(remote, 64 << 20, disk, Runnable::run, 64 << 10);
      ImageFileSystem fs = new ImageFileSystem(index, reader);
      for (int i = 0; i < small.length; i++) {
        assertArrayEquals(
            small[i], Reads.readAll(fs, String.format("lib/m%03d.py", i)), "file " + i);
      }
      assertEquals(0, disk.entries());
      assertEquals(1, disk.failedWrites(), "one failed write, logged once; writes pause after it");
      assertTrue(disk.skippedWrites() > 0);

      // Room again: once the pause is over, chunks go to disk again.
      Files.delete(filler);
      clock.advance(Duration.ofMinutes(10));
      reader.invalidateMemory();
      assertArrayEquals(small[7], Reads.readAll(fs, "lib/m007.py"));
      assertTrue(disk.entries() > 0, "cached again");
    }
  }
}
