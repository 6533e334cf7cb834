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

  /**
   * A store in an S3-compatible service. Credentials come from the usual AWS places (environment,
   * profile files) unless given; {@code scratch} holds uploads of unknown length.
   */
  public static BlobStore s3(S3Location location, Path scratch) {
    return new S3BlobStore(location, S3BlobStore.Settings.defaults(), null, scratch);
  }

  /**
   * As {@link #s3(S3Location, Path)} with explicit credentials (null: the usual AWS places), a
   * bound on each call, retries included, and a number of attempts.
   */
  public static BlobStore s3(S3Location location, Path scratch,
      software.amazon.awssdk.auth.credentials.AwsCredentialsProvider credentials, java.time.Duration callTimeout,
      int maxAttempts) {
    S3BlobStore.Settings d = S3BlobStore.Settings.defaults();
    java.time.Duration attempt = callTimeout.compareTo(d.attemptTimeout()) < 0 ? callTimeout : d.attemptTimeout();
    return new S3BlobStore(location, new S3BlobStore.Settings(d.maxConnections(), d.connectTimeout(), attempt,
        callTimeout, maxAttempts), credentials, scratch);
  }

  /** Wraps a store so that its reads are counted. */
  public static MeteredBlobStore metered(BlobStore store) {
    return new MeteredBlobStore(store);
  }
}
