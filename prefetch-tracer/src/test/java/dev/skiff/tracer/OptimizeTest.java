package dev.skiff.tracer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.index.Inode;
import dev.skiff.casfs.pack.ChunkLocation;
import dev.skiff.casfs.testing.Reads;
import dev.skiff.casfs.testing.Tars;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** optimize: traced chunks move into one pack in trace order; the image reads the same. */
class OptimizeTest {
  @TempDir Path tmp;

  @Test
  void tracedChunksMoveIntoOnePackInTraceOrder() throws Exception {
    Map<String, byte[]> files = new LinkedHashMap<>();
    SplittableRandom rnd = new SplittableRandom(9);
    Tars t = new Tars().dir("lib", 0755);
    for (String name : List.of("lib/a.py", "lib/b.py", "lib/c.py", "lib/d.py", "lib/e.py")) {
      byte[] b = new byte[6000 + rnd.nextInt(3000)];
      rnd.nextBytes(b);
      files.put(name, b);
      t.file(name, b, 0644);
    }
    byte[] big = new byte[(2 << 20) + 1];
    rnd.nextBytes(big);
    files.put("big.bin", big);
    t.file("big.bin", big, 0644).symlink("lib/link", "a.py");
    try (ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      store.importImage(
          t.write(tmp.resolve("app.tar")).toString(), ImageRef.parse("app:1"), ImportProgress.NONE);
      Digest before = store.resolve(ImageRef.parse("app:1")).orElseThrow();
      List<String> startOrder = List.of("lib/e.py", "big.bin", "lib/c.py", "lib/a.py");
      try (ImageIndex index = store.openIndex(before)) {
        TraceRecorder rec = new TraceRecorder();
        ImageFileSystem fs =
            new ImageFileSystem(
                index, new ChunkReader(store.blobs(), 64 << 20, null, Runnable::run));
        fs.setAccessListener(rec);
        for (String p : startOrder) {
          Reads.readAll(fs, p);
        }
        TraceStore.record(store.blobs(), before, null, rec.toTrace(index));
      }

      TraceOptimizer.Result r = TraceOptimizer.optimize(store, ImageRef.parse("app:1"), null);
      assertNotEquals(before, r.after());
      assertEquals(
          r.after(), store.resolve(ImageRef.parse("app:1")).orElseThrow(), "the tag moved");
      assertEquals(6, r.chunks(), "e, three chunks of big.bin, c, a");
      assertTrue(
          TraceStore.load(store.blobs(), r.after(), null).isPresent(),
          "the trace follows the image");

      try (ImageIndex opt = store.openIndex(r.after())) {
        List<ChunkLocation> locs = new ArrayList<>();
        for (String p : startOrder) {
          Inode n = opt.inode(opt.resolve(p));
          for (int c = 0; c < n.chunkCount(); c++) {
            locs.add(opt.chunk(n.ino(), c));
          }
        }
        long expect = 0;
        for (ChunkLocation l : locs) {
          assertEquals(r.pack(), l.pack(), "traced chunks are in the new pack");
          assertEquals(expect, l.offset(), "contiguous, in trace order");
          expect += l.storedLength();
        }
        assertNotEquals(
            r.pack(),
            opt.chunk(opt.resolve("lib/b.py"), 0).pack(),
            "untraced chunks stay where they were");
        ImageFileSystem fs =
            new ImageFileSystem(opt, new ChunkReader(store.blobs(), 64 << 20, null, Runnable::run));
        for (var e : files.entrySet()) {
          assertArrayEquals(e.getValue(), Reads.readAll(fs, e.getKey()), e.getKey());
        }
        assertArrayEquals("a.py".getBytes(), fs.readlink(opt.resolve("lib/link")));
      }
      try (ImageIndex old = store.openIndex(before)) {
        ImageFileSystem fs =
            new ImageFileSystem(old, new ChunkReader(store.blobs(), 64 << 20, null, Runnable::run));
        assertArrayEquals(
            big, Reads.readAll(fs, "big.bin"), "the old index and its packs still work");
      }
    }
  }
}
