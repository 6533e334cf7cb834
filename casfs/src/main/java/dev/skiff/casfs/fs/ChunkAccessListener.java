package dev.skiff.casfs.fs;

import dev.skiff.casfs.pack.ChunkLocation;

/**
 * Told about the first read of each chunk of a mounted image (the hook that start-up tracing plugs
 * into; casfs itself knows nothing of traces). Called on the reading thread, before the chunk is
 * fetched: implementations must be quick and must not throw. {@code ready} says whether the chunk
 * was already in memory or on its way (a prefetch hit) rather than a demand miss.
 */
@FunctionalInterface
public interface ChunkAccessListener {
  void firstAccess(long ino, int chunkIndex, ChunkLocation location, boolean ready);
}
