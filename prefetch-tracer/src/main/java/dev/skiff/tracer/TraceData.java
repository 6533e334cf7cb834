package dev.skiff.tracer;

import dev.skiff.casfs.DerivedData;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.store.BlobNames;
import java.io.IOException;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The traces a store keeps for its images, so that garbage collection removes them with the image.
 */
public final class TraceData implements DerivedData {
  @Override
  public String kind() {
    return "traces";
  }

  @Override
  public Set<Digest> indexes(ImageStore store) throws IOException {
    Set<Digest> out = new HashSet<>();
    for (String name : store.blobs().list(BlobNames.TRACES)) {
      BlobNames.traceIndex(name).ifPresent(out::add);
    }
    return out;
  }

  @Override
  public int remove(ImageStore store, Digest index, boolean dryRun) throws IOException {
    List<String> traces =
        store.blobs().list(BlobNames.TRACES + index.algorithm().label() + "/").stream()
            .filter(n -> BlobNames.isTraceOf(n, index))
            .toList();
    if (!dryRun) {
      for (String t : traces) {
        store.blobs().delete(t);
      }
    }
    return traces.size();
  }
}
