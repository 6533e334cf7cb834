package dev.skiff.tracer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.MeteredBlobStore;
import dev.skiff.casfs.testing.Reads;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Record what a start reads, replay it ahead of the next start; traces follow content. */
class ReplayTest {
  @TempDir Path tmp;

  static final List<String> START = List.of("lib/a.py", "lib/b.py", "data/big.bin", "lib/c.py");

  private static Tars files(SplittableRandom rnd) throws IOException {
    Tars t = new Tars().dir("lib", 0755).dir("data", 0755);
    for (String name : List.of("lib/a.py", "lib/b.py", "lib/c.py", "lib/unused.py")) {
      byte[] b = new byte[9000];
      rnd.nextBytes(b);
      t.file(name, b, 0644);
    }
    byte[] big = new byte[(2 << 20) + 100];
    rnd.nextBytes(big);
    return t.file("data/big.bin", big, 0644);
  }

  @Test
  void aRecordedStartIsPrefetchedNextTimeAndHelpsAnImageThatSharesItsChunks() throws Exception {
    try (ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      store.importImage(
          files(new SplittableRandom(1)).write(tmp.resolve("v1.tar")).toString(),
          ImageRef.parse("app:1"),
          ImportProgress.NONE);
      // A new build of the same app: the same files plus one more.
      store.importImage(
          files(new SplittableRandom(1))
              .file("lib/new.py", "print('v2')")
              .write(tmp.resolve("v2.tar"))
              .toString(),
          ImageRef.parse("app:2"),
          ImportProgress.NONE);
      MeteredBlobStore blobs = store.blobs();
      Digest v1 = store.resolve(ImageRef.parse("app:1")).orElseThrow();

      // Record a start of v1 (a fake clock: each access 1 ms after the previous).
      AtomicLong now = new AtomicLong();
      TraceRecorder recorder = new TraceRecorder(() -> now.addAndGet(1_000_000));
      try (ImageIndex index = store.openIndex(v1)) {
        ImageFileSystem fs =
            new ImageFileSystem(index, new ChunkReader(blobs, 64 << 20, null, Runnable::run));
        fs.setAccessListener(recorder);
        for (String p : START) {
          Reads.readAll(fs, p);
        }
        Trace trace = TraceStore.record(blobs, v1, null, recorder.toTrace(index));
        assertEquals(6, trace.entries().size(), "a, b, three chunks of big.bin, c");
        assertEquals("/lib/a.py", trace.entries().get(0).path());
        assertEquals("/lib/c.py", trace.entries().get(5).path());
      }

      // The next start of v1, and a start of v2: replay first, then read; no reader waits on the
      // store.
      for (String ref : List.of("app:1", "app:2")) {
        try (ImageIndex index = store.openIndex(ImageRef.parse(ref))) {
          ChunkReader reader = new ChunkReader(blobs, 64 << 20, null, Runnable::run);
          Trace trace = TraceStore.load(blobs, v1, null).orElseThrow();
          try (TracePrefetcher p = TracePrefetcher.start(trace, index, reader, 4)) {
            p.awaitDone(30_000);
            assertTrue(p.isDone());
            assertEquals(6, p.fetched(), ref);
          }
          long before = blobs.reads();
          ImageFileSystem fs = new ImageFileSystem(index, reader);
          for (String path : START) {
            Reads.readAll(fs, path);
          }
          assertEquals(
              before, blobs.reads(), ref + ": every chunk the start read was already fetched");
        }
      }
    }
  }

  @Test
  void aStaleTraceIsSkippedWhereItNamesChunksTheImageLacks() throws Exception {
    try (ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      store.importImage(
          files(new SplittableRandom(2)).write(tmp.resolve("x.tar")).toString(),
          ImageRef.parse("x:1"),
          ImportProgress.NONE);
      try (ImageIndex index = store.openIndex(ImageRef.parse("x:1"))) {
        Trace stale =
            new Trace(
                index.algorithm(),
                1,
                List.of(
                    new Trace.Entry(TraceTest.d("gone"), 1, 10, 1, 0, "/old"),
                    new Trace.Entry(TraceTest.d("also gone"), 2, 10, 1, 0, "/old")));
        try (TracePrefetcher p =
            TracePrefetcher.start(
                stale, index, new ChunkReader(store.blobs(), 1 << 20, null, Runnable::run), 2)) {
          p.awaitDone(10_000);
          assertEquals(2, p.skipped());
          assertEquals(0, p.fetched());
        }
      }
    }
  }
}
