package dev.skiff.casfs.store;

import java.io.IOException;
import java.nio.file.Path;

/** Opens blob stores. */
public final class BlobStores {
  private BlobStores() {}

  /** A store keeping blobs as files under {@code dir}, created if missing. */
  public static BlobStore local(Path dir) throws IOException {
    return new LocalDirStore(dir);
  }

  /** Wraps a store so that its reads are counted. */
  public static MeteredBlobStore metered(BlobStore store) {
    return new MeteredBlobStore(store);
  }
}
