package dev.skiff.casfs.image;

import dev.skiff.casfs.digest.Digest;

/**
 * What an import produced: the index's digest, and what the store gained. {@code newBytes} counts
 * pack bytes and the index, if either was not in the store before.
 */
public record ImportResult(
    Digest index,
    String source,
    long files,
    long inodes,
    long logicalBytes,
    long chunkRefs,
    long uniqueChunks,
    long newChunks,
    long newBytes,
    long indexBytes,
    double seconds) {

  /** Logical bytes per new stored byte; infinite when nothing new was stored. */
  public double dedupRatio() {
    return newBytes == 0 ? Double.POSITIVE_INFINITY : (double) logicalBytes / newBytes;
  }
}
