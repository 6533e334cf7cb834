package dev.skiff.casfs.mount;

import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.fs.ChunkAccessListener;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.BlobStore;
import java.io.IOException;
import java.util.concurrent.Executor;

/**
 * Where modules above casfs plug into a mount as it comes up and goes away (start-up traces:
 * fetching a trace while the index travels, replaying it as prefetch, recording first reads).
 * Called on the thread that mounts or closes; every method has a default that does nothing.
 */
public interface MountHook {
  MountHook NONE = new MountHook() {};

  /**
   * The image is known by its index digest, before its index is fetched: start fetching what is
   * needed alongside, on {@code executor}. {@code source} is the store the image's blobs come from
   * (its bucket, or the local store).
   */
  default void resolved(BlobStore source, Digest index, Executor executor) {}

  /**
   * The index is open and chunks can be read, before the filesystem is mounted: start prefetch
   * through {@link ChunkReader#prefetch}; returns the listener to tell of each chunk's first read,
   * or null.
   */
  default ChunkAccessListener opened(ImageIndex index, ChunkReader chunks) throws IOException {
    return null;
  }

  /** The filesystem has been unmounted; the index is still open. */
  default void unmounted(ImageMount mount) throws IOException {}
}
