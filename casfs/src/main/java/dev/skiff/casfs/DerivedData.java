package dev.skiff.casfs;

import dev.skiff.casfs.digest.Digest;
import java.io.IOException;
import java.util.Set;

/**
 * Data kept for an image by a module above casfs (start-up traces, memory snapshots), named by the
 * image's index digest. Garbage collection keeps it while the image is needed and removes it with
 * the image. Implementations register as a {@link java.util.ServiceLoader} service (or through
 * {@link ImageStore#register}); casfs knows nothing else of them.
 */
public interface DerivedData {
  /** What it is, for people: "traces", "snapshots". */
  String kind();

  /** The images (index digests) this owner keeps data for in {@code store}. */
  Set<Digest> indexes(ImageStore store) throws IOException;

  /**
   * Removes what it keeps for the image {@code index} (or only counts it, in a dry run); returns
   * the number of items (traces, snapshots) removed.
   */
  int remove(ImageStore store, Digest index, boolean dryRun) throws IOException;
}
