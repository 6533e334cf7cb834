package dev.skiff.casfs;

import dev.skiff.casfs.digest.Digest;
import java.time.Instant;

/**
 * A tagged image as {@code skiff images} shows it. {@code storedBytes} is what the image's unique
 * chunks take in the store; {@code newBytes} is what its import added (chunks other images did not
 * already have, plus the index).
 */
public record ImageInfo(
    ImageRef ref,
    Digest index,
    Instant imported,
    String source,
    long files,
    long logicalBytes,
    long storedBytes,
    long newBytes,
    long indexBytes) {

  /** Logical bytes per byte the import added. */
  public double dedupRatio() {
    return newBytes == 0 ? Double.POSITIVE_INFINITY : (double) logicalBytes / newBytes;
  }
}
