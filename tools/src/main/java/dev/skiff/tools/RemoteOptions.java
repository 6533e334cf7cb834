package dev.skiff.tools;

import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.Remotes;
import dev.skiff.casfs.store.S3Location;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import picocli.CommandLine.Option;

/**
 * How to reach an S3-compatible service. Credentials always come from the usual AWS places
 * (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, AWS_PROFILE).
 */
final class RemoteOptions implements Remotes {
  @Option(
      names = "--endpoint",
      paramLabel = "URL",
      description =
          "S3-compatible endpoint (MinIO, R2, Ceph...); default: AWS, or $AWS_ENDPOINT_URL")
  String endpoint;

  @Option(
      names = "--region",
      description = "region (default: $AWS_REGION, the profile, else us-east-1)")
  String region;

  @Option(
      names = "--path-style",
      description = "path-style addressing (default: on when an endpoint is given)")
  Boolean pathStyle;

  @Option(
      names = "--store-timeout",
      defaultValue = "60s",
      paramLabel = "DURATION",
      description =
          "give up on a store request (retries included) after this long: a read then fails with EIO"
              + " (default ${DEFAULT-VALUE}; each attempt is bounded at 20s or less)")
  String timeout;

  /** Whether no option was given (a daemon's own settings would serve as well). */
  boolean isDefault() {
    return endpoint == null && region == null && pathStyle == null && "60s".equals(timeout);
  }

  /** A client for {@code where} with these options; credentials from the usual AWS places. */
  @Override
  public BlobStore open(S3Location where, Path scratch) {
    return BlobStores.s3(where, scratch, null, duration(timeout), 4);
  }

  static Duration duration(String s) {
    String t = s.trim().toLowerCase(java.util.Locale.ROOT);
    try {
      if (t.endsWith("ms")) {
        return Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
      }
      if (t.endsWith("s")) {
        return Duration.ofMillis(
            (long) (Double.parseDouble(t.substring(0, t.length() - 1)) * 1000));
      }
      if (t.endsWith("m")) {
        return Duration.ofSeconds(Long.parseLong(t.substring(0, t.length() - 1)) * 60);
      }
      if (t.endsWith("h")) {
        return Duration.ofSeconds(Long.parseLong(t.substring(0, t.length() - 1)) * 3600);
      }
      return Duration.ofSeconds(Long.parseLong(t));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "not a duration: '" + s + "' (examples: 500ms, 30s, 2m, 1h)");
    }
  }

  /** Parses {@code s3://bucket[/prefix]} with these options. */
  @Override
  public S3Location relocate(S3Location pulledFrom) {
    return endpoint == null ? pulledFrom : location(pulledFrom.url());
  }

  @Override
  public S3Location location(String url) {
    String ep = endpoint != null ? endpoint : System.getenv("AWS_ENDPOINT_URL");
    boolean path = pathStyle != null ? pathStyle : ep != null;
    return S3Location.parse(url, ep == null || ep.isBlank() ? null : URI.create(ep), region, path);
  }
}
