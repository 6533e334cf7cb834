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
    return new S3BlobStore(
        location, S3BlobStore.Settings.defaults(), null, scratch, System::nanoTime);
  }

  /**
   * As {@link #s3(S3Location, Path)} with explicit credentials (null: the usual AWS places), a
   * bound on each call, retries included, and a number of attempts. A call that gets no answer
   * within the bound makes the calls after it fail at once, but for one every few seconds, until
   * one gets an answer: a store that hangs costs each read one bound, not one per call.
   */
  public static BlobStore s3(
      S3Location location,
      Path scratch,
      software.amazon.awssdk.auth.credentials.AwsCredentialsProvider credentials,
      java.time.Duration callTimeout,
      int maxAttempts) {
    return s3(location, scratch, credentials, callTimeout, maxAttempts, System::nanoTime);
  }

  /**
   * As {@link #s3(S3Location, Path, software.amazon.awssdk.auth.credentials.AwsCredentialsProvider,
   * java.time.Duration, int)}, with the clock ({@link System#nanoTime} elsewhere) that times how
   * long calls fail at once after the store stopped answering, so that tests move time on instead
   * of sleeping.
   */
  public static BlobStore s3(
      S3Location location,
      Path scratch,
      software.amazon.awssdk.auth.credentials.AwsCredentialsProvider credentials,
      java.time.Duration callTimeout,
      int maxAttempts,
      java.util.function.LongSupplier nanoClock) {
    return new S3BlobStore(
        location,
        S3BlobStore.Settings.defaults().withCallTimeout(callTimeout, maxAttempts),
        credentials,
        scratch,
        nanoClock);
  }

  /** Wraps a store so that its reads are counted. */
  public static MeteredBlobStore metered(BlobStore store) {
    return new MeteredBlobStore(store);
  }
}
