package dev.skiff.casfs;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.digest.Digest;
import java.time.Instant;

/**
 * A tagged image as {@code skiff images} shows it. {@code storedBytes} is what the image's unique
 * chunks take in the store; {@code newBytes} is what its import added (chunks other images did not
 * already have, plus the index). A damaged image (its tag unreadable, its index missing or damaged,
 * packs missing) has {@code damage} saying why, and zeros where its index could not say.
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
    long indexBytes,
    String damage) {

  /**
   * An image that cannot be used, with what is known of it ({@code index} null if its tag is
   * unreadable).
   */
  static ImageInfo damaged(ImageRef ref, Digest index, String damage) {
    return new ImageInfo(ref, index, Instant.EPOCH, "", 0, 0, 0, 0, 0, damage);
  }

  public boolean isDamaged() {
    return damage != null;
  }

  /** Logical bytes per byte the import added. */
  public double dedupRatio() {
    return newBytes == 0 ? Double.POSITIVE_INFINITY : (double) logicalBytes / newBytes;
  }
}
