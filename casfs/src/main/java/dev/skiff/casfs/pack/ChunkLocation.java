package dev.skiff.casfs.pack;

import dev.skiff.casfs.digest.Digest;

/**
 * Where a chunk's stored bytes lie: a range of a pack blob, and how to turn them back into the
 * chunk's plain bytes.
 */
public record ChunkLocation(
    Digest digest, String pack, long offset, int storedLength, int plainLength, Codec codec) {}
