package dev.skiff.tracer;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.index.IndexWriter;
import dev.skiff.casfs.pack.ChunkLocation;
import dev.skiff.casfs.pack.PackWriter;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;

/**
 * Repacks an image for its start: the chunks its trace names are copied, exactly as stored and in
 * trace order, into one new pack, and a new index points at them there (everything else is
 * unchanged), so a cold start reads them with a few large ranged reads. The old packs stay: other
 * images, and the old index, still use them. The tag moves to the new index and the trace is kept
 * under it. Every copied chunk is checked against its digest.
 */
public final class TraceOptimizer {
  private TraceOptimizer() {}

  /** What an optimize did. */
  public record Result(Digest before, Digest after, int chunks, long bytes, String pack) {}

  public static Result optimize(ImageStore store, ImageRef ref, String traceKey)
      throws IOException {
    // Under the writer lock: a garbage collection must not see the new pack before its index.
    return store.locked(() -> optimizeLocked(store, ref, traceKey));
  }

  private static Result optimizeLocked(ImageStore store, ImageRef ref, String traceKey)
      throws IOException {
    if (store.remoteOf(ref).isPresent()) {
      throw new IOException(
          ref + " was pulled: its packs are remote; optimize it where it was imported, then push");
    }
    Digest before = store.resolve(ref).orElseThrow(() -> new IOException("no image " + ref));
    BlobStore blobs = store.blobs();
    Trace trace =
        TraceStore.load(blobs, before, traceKey)
            .orElseThrow(
                () ->
                    new IOException(
                        "no trace for "
                            + ref
                            + ": mount it with --record and run its start first"));
    Path scratch = store.scratch();
    try (ImageIndex index = store.openIndex(before)) {
      Map<Digest, ChunkLocation> here = index.allChunks();
      Map<Digest, ChunkLocation> moved = new HashMap<>();
      String packName;
      long bytes = 0;
      try (PackWriter pack = new PackWriter(index.algorithm(), scratch, 0)) {
        Map<Digest, PackWriter.Appended> appended = new HashMap<>();
        for (Trace.Entry e : trace.entries()) {
          ChunkLocation loc = here.get(e.digest());
          if (loc == null || appended.containsKey(e.digest())) {
            continue;
          }
          byte[] stored = blobs.readFully(loc.pack(), loc.offset(), loc.storedLength()).array();
          byte[] plain = loc.codec().decode(stored, loc.plainLength());
          if (!loc.digest().algorithm().digest(plain).equals(loc.digest())) {
            throw new IOException(
                "chunk " + loc.digest() + " in " + loc.pack() + " is corrupt; not repacking it");
          }
          appended.put(
              e.digest(), pack.appendStored(loc.digest(), stored, loc.plainLength(), loc.codec()));
          bytes += stored.length;
        }
        if (appended.isEmpty()) {
          throw new IOException("the trace of " + ref + " names no chunk of this image");
        }
        packName = pack.seal(blobs);
        appended.forEach(
            (d, a) ->
                moved.put(
                    d,
                    new ChunkLocation(
                        d,
                        packName,
                        a.offset(),
                        a.storedLength(),
                        here.get(d).plainLength(),
                        a.codec())));
      }
      Path file = Files.createTempFile(scratch, "optimized-", ".index");
      try {
        try (IndexWriter w = new IndexWriter(scratch, index.algorithm(), index.chunkSize())) {
          index.copyTo(w, loc -> moved.getOrDefault(loc.digest(), loc));
          w.finish(file);
        }
        Digest after;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
          after = index.algorithm().digest(ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size()));
        }
        long indexBytes = Files.size(file);
        blobs.putFile(BlobNames.index(after), file);
        TraceStore.save(blobs, after, traceKey, trace);
        store.tag(ref, after, "optimize of " + before, bytes + indexBytes);
        return new Result(before, after, moved.size(), bytes, packName);
      } finally {
        Files.deleteIfExists(file);
      }
    }
  }
}
