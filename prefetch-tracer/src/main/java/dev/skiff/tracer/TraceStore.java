package dev.skiff.tracer;

import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Optional;

/**
 * Where traces live: next to the image, in the same blob store ({@code traces/ALG/INDEXHEX} or,
 * with an entrypoint key, {@code traces/ALG/INDEXHEX.KEY}). A trace recorded on a mount from a
 * remote store is written back to that store, so every host's next cold start uses it.
 */
public final class TraceStore {
  private TraceStore() {}

  public static String name(Digest index, String key) {
    return BlobNames.trace(index, key);
  }

  public static Optional<Trace> load(BlobStore store, Digest index, String key) throws IOException {
    Optional<byte[]> blob = store.readAll(name(index, key));
    return blob.isEmpty() ? Optional.empty() : Optional.of(Trace.decode(blob.get()));
  }

  /**
   * Copies every trace of an image (its main one and any keyed ones) from one store to another, as
   * a push of the image does. Returns how many were copied.
   */
  public static int copyAll(BlobStore from, BlobStore to, Digest index) throws IOException {
    int n = 0;
    for (String blob : from.list(BlobNames.TRACES + index.algorithm().label() + "/")) {
      if (BlobNames.isTraceOf(blob, index)) {
        Optional<byte[]> content = from.readAll(blob);
        if (content.isPresent()) { // else deleted since the listing
          to.put(blob, new ByteArrayInputStream(content.get()));
          n++;
        }
      }
    }
    return n;
  }

  /** Stores {@code trace} as the image's trace, replacing any. */
  public static void save(BlobStore store, Digest index, String key, Trace trace)
      throws IOException {
    store.put(name(index, key), new ByteArrayInputStream(trace.encode()));
  }

  /**
   * Merges {@code recording} into the stored trace (or stores it as the first) and returns the
   * result.
   */
  public static Trace record(BlobStore store, Digest index, String key, Trace recording)
      throws IOException {
    Trace merged = load(store, index, key).map(t -> t.merge(recording)).orElse(recording);
    save(store, index, key, merged);
    return merged;
  }
}
