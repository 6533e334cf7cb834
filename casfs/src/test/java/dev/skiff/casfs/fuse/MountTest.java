package dev.skiff.casfs.fuse;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.ForwardingBlobStore;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Behaviour of a real FUSE mount: read-only, kernel caching, lazy reads, concurrency, corruption.
 */
@Tag("fuse")
class MountTest {
  @TempDir static Path tmp;

  static ImageStore store;
  static byte[] big;

  @BeforeAll
  static void setUp() throws IOException {
    Environment.requireFuse();
    store = ImageStore.open(tmp.resolve("home"));
    big = new byte[(3 << 20) + 5];
    new SplittableRandom(11).nextBytes(big);
    Tars tars = new Tars();
    for (int i = 0; i < 700; i++) {
      tars.file(String.format("many/a-rather-long-file-name-to-fill-readdir-buffers-%04d", i), "x");
    }
    Path tar =
        tars.dir("d", 0755)
            .file("d/small.txt", "small file\n")
            .file("big.bin", big, 0644)
            .file("slow.bin", "slow".repeat(3000))
            .file("fast.bin", "fast".repeat(3000))
            .symlink("d/link", "../big.bin")
            .write(tmp.resolve("image.tar"));
    store.importImage(tar.toString(), ImageRef.parse("mt:1"), ImportProgress.NONE);
  }

  @AfterAll
  static void tearDown() throws IOException {
    if (store != null) {
      store.close();
    }
  }

  @Test
  void everyKindOfWriteIsRefusedAsReadOnly() throws IOException {
    try (Mounted m = new Mounted(store, "mt:1", tmp.resolve("ro"))) {
      Path f = m.path("d/small.txt");
      List<IoAction> writes =
          List.of(
              () -> Files.writeString(m.path("new.txt"), "x"),
              () -> Files.writeString(f, "x", StandardOpenOption.APPEND),
              () -> Files.createDirectory(m.path("newdir")),
              () -> Files.delete(f),
              () -> Files.move(f, m.path("moved")),
              () -> Files.createSymbolicLink(m.path("sl"), f),
              () -> Files.createLink(m.path("hl"), f),
              () -> Files.setPosixFilePermissions(f, Set.of(PosixFilePermission.OWNER_READ)),
              () -> Files.setAttribute(f, "user:foo", ByteBuffer.wrap(new byte[] {1})),
              () -> {
                try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
                  ch.truncate(0);
                }
              });
      for (IoAction w : writes) {
        FileSystemException e = assertThrows(FileSystemException.class, w::run);
        assertTrue(String.valueOf(e.getReason()).contains("Read-only file system"), e.toString());
      }
      assertEquals("small file\n", Files.readString(f), "nothing changed");
    }
  }

  @Test
  void largeDirectoriesListCompletelyAcrossManyReaddirCalls() throws IOException {
    try (Mounted m = new Mounted(store, "mt:1", tmp.resolve("list"))) {
      try (var s = Files.list(m.path("many"))) {
        assertEquals(700, s.count());
      }
      try (var s = Files.list(m.path("d"))) {
        assertEquals(2, s.count());
      }
    }
  }

  interface IoAction {
    void run() throws IOException;
  }

  @Test
  void warmRereadsAndRestatsAreAnsweredByTheKernel() throws IOException {
    try (Mounted m = new Mounted(store, "mt:1", tmp.resolve("warm"))) {
      assertArrayEquals(big, Files.readAllBytes(m.path("big.bin")));
      assertEquals("small file\n", Files.readString(m.path("d/small.txt")));
      Files.readAttributes(m.path("d/link"), "unix:*", java.nio.file.LinkOption.NOFOLLOW_LINKS);
      assertFalse(Files.exists(m.path("d/missing")));
      ImageFileSystem.Stats before = m.fs.stats();
      for (int i = 0; i < 3; i++) {
        assertArrayEquals(big, Files.readAllBytes(m.path("big.bin")));
        assertEquals("small file\n", Files.readString(m.path("d/small.txt")));
        Files.readAttributes(m.path("d/link"), "unix:*", java.nio.file.LinkOption.NOFOLLOW_LINKS);
        assertFalse(Files.exists(m.path("d/missing")), "negative lookups are cached too");
      }
      assertEquals(before, m.fs.stats(), "no lookup, getattr or read reached Java the second time");
    }
  }

  @Test
  void aSlowFetchDoesNotHoldUpOtherReads() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch slowStarted = new CountDownLatch(1);
    BlobStore gated = new GatedStore(store.blobs(), release, slowStarted);
    try (Mounted m =
        new Mounted(store, "mt:1", tmp.resolve("conc"), gated, FuseMount.Options.defaults())) {
      // Only reads of big.bin's 1 MiB chunks are held; fast.bin's chunk is small.
      CompletableFuture<byte[]> slow =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return Files.readAllBytes(m.path("big.bin"));
                } catch (IOException e) {
                  throw new RuntimeException(e);
                }
              });
      assertTrue(slowStarted.await(10, TimeUnit.SECONDS), "the slow fetch began");
      assertEquals("fast".repeat(3000), Files.readString(m.path("fast.bin")));
      assertEquals("small file\n", Files.readString(m.path("d/small.txt")));
      assertFalse(slow.isDone(), "the other reads finished while the slow fetch was still held");
      release.countDown();
      assertArrayEquals(big, slow.get(30, TimeUnit.SECONDS));
    }
  }

  @Test
  void corruptStoredBytesGiveEioAndTheMountRecoversOnceTheStoreIsRepaired() throws IOException {
    String pack =
        store.blobs().list("packs/").stream()
            .filter(p -> !p.endsWith(".idx"))
            .findFirst()
            .orElseThrow();
    Path packFile = store.blobs().localFile(pack).orElseThrow();
    byte[] original = Files.readAllBytes(packFile);
    byte[] broken = original.clone();
    for (int i = 0; i < broken.length; i += 4096) {
      broken[i] ^= 0x5a;
    }
    Path brokenFile = tmp.resolve("broken.pack");
    Files.write(brokenFile, broken);
    try (Mounted m =
        new Mounted(
            store,
            "mt:1",
            tmp.resolve("corrupt"),
            new RedirectingStore(store.blobs(), pack, brokenFile),
            FuseMount.Options.defaults())) {
      IOException e = assertThrows(IOException.class, () -> Files.readAllBytes(m.path("big.bin")));
      assertTrue(e.getMessage().contains("Input/output error"), e.toString());
      assertTrue(m.chunks.stats().corrupt() > 0);
      Files.write(brokenFile, original); // the store is repaired
      assertArrayEquals(big, Files.readAllBytes(m.path("big.bin")), "no wrong bytes were cached");
    }
  }

  @Test
  void aLargeImageIsReadLazily() throws IOException {
    // 1.25 GB of incompressible data in 40 files, plus one small file that is not inline.
    Path tar = tmp.resolve("large.tar");
    SplittableRandom rnd = new SplittableRandom(5);
    byte[] block = new byte[32 << 20];
    try (OutputStream o = Files.newOutputStream(tar);
        TarArchiveOutputStream t = new TarArchiveOutputStream(o)) {
      for (int i = 0; i < 40; i++) {
        TarArchiveEntry e = new TarArchiveEntry("data/part-" + i);
        e.setSize(block.length);
        t.putArchiveEntry(e);
        rnd.nextBytes(block);
        t.write(block);
        t.closeArchiveEntry();
      }
      byte[] small = new byte[10_000];
      rnd.nextBytes(small);
      TarArchiveEntry e = new TarArchiveEntry("app/config.bin");
      e.setSize(small.length);
      t.putArchiveEntry(e);
      t.write(small);
      t.closeArchiveEntry();
    }
    try (ImageStore large = ImageStore.open(tmp.resolve("large-home"))) {
      large.importImage(tar.toString(), ImageRef.parse("large:1"), ImportProgress.NONE);
      Files.delete(tar);
      try (Mounted m = new Mounted(large, "large:1", tmp.resolve("large"))) {
        large.blobs().resetCounters(); // mounting read the tag
        assertEquals(10_000, Files.readAllBytes(m.path("app/config.bin")).length);
        assertEquals(1, large.blobs().reads(), "one ranged read");
        assertTrue(
            large.blobs().bytesRead() <= 10_100,
            "read " + large.blobs().bytesRead() + " bytes of 1.25 GB");
      }
    }
  }

  /** Holds reads of 1 MiB chunks until released; smaller reads pass. */
  static final class GatedStore extends ForwardingBlobStore {
    private final CountDownLatch release;
    private final CountDownLatch started;

    GatedStore(BlobStore inner, CountDownLatch release, CountDownLatch started) {
      super(inner);
      this.release = release;
      this.started = started;
    }

    @Override
    public int read(String name, long offset, int length, ByteBuffer dst) throws IOException {
      if (length < (1 << 20)) {
        return super.read(name, offset, length, dst);
      }
      started.countDown();
      try {
        release.await(60, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        throw new IOException(e);
      }
      return super.read(name, offset, length, dst);
    }
  }

  /** Serves one blob from another file: a store whose copy of a pack can be broken and repaired. */
  static final class RedirectingStore extends ForwardingBlobStore {
    private final String name;
    private final Path file;

    RedirectingStore(BlobStore inner, String name, Path file) {
      super(inner);
      this.name = name;
      this.file = file;
    }

    @Override
    public int read(String n, long offset, int length, ByteBuffer dst) throws IOException {
      if (!n.equals(name)) {
        return super.read(n, offset, length, dst);
      }
      try (FileChannel ch = FileChannel.open(file)) {
        int total = 0;
        while (total < length) {
          int r = ch.read(dst, offset + total);
          if (r < 0) {
            break;
          }
          total += r;
        }
        return total;
      }
    }
  }
}
