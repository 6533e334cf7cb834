package dev.skiff.casfs.store;

import java.net.URI;
import java.nio.file.Path;

/**
 * How to reach buckets: an endpoint, a region, credentials and timeouts, as a command line or a
 * worker's configuration sets them. {@link #fromEnvironment()} reaches them as the AWS tools would.
 */
public interface Remotes {
  /** Parses {@code s3://bucket[/prefix]} with these settings. */
  S3Location location(String url);

  /** A client for {@code where}; {@code scratch} holds uploads of unknown length. */
  BlobStore open(S3Location where, Path scratch);

  /**
   * Where a pulled image's chunks are read from: where it was pulled from, unless these settings
   * name another endpoint (a bucket reached through a proxy, say).
   */
  default S3Location relocate(S3Location pulledFrom) {
    return pulledFrom;
  }

  /**
   * Buckets reached as the AWS tools would: $AWS_ENDPOINT_URL (path-style when set), region and
   * credentials from the usual places.
   */
  static Remotes fromEnvironment() {
    return new Remotes() {
      @Override
      public S3Location location(String url) {
        String ep = System.getenv("AWS_ENDPOINT_URL");
        boolean set = ep != null && !ep.isBlank();
        return S3Location.parse(url, set ? URI.create(ep) : null, null, set);
      }

      @Override
      public BlobStore open(S3Location where, Path scratch) {
        return BlobStores.s3(where, scratch);
      }
    };
  }
}
