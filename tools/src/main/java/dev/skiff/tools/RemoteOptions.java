package dev.skiff.tools;

import dev.skiff.casfs.store.S3Location;
import java.net.URI;
import picocli.CommandLine.Option;

/**
 * How to reach an S3-compatible service. Credentials always come from the usual AWS places
 * (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, AWS_PROFILE).
 */
final class RemoteOptions {
  @Option(names = "--endpoint", paramLabel = "URL",
      description = "S3-compatible endpoint (MinIO, R2, Ceph...); default: AWS, or $AWS_ENDPOINT_URL")
  String endpoint;

  @Option(names = "--region", description = "region (default: $AWS_REGION, the profile, else us-east-1)")
  String region;

  @Option(names = "--path-style", description = "path-style addressing (default: on when an endpoint is given)")
  Boolean pathStyle;

  /** Parses {@code s3://bucket[/prefix]} with these options. */
  S3Location location(String url) {
    String ep = endpoint != null ? endpoint : System.getenv("AWS_ENDPOINT_URL");
    boolean path = pathStyle != null ? pathStyle : ep != null;
    return S3Location.parse(url, ep == null || ep.isBlank() ? null : URI.create(ep), region, path);
  }

  /** Splits {@code s3://bucket/prefix/name:tag} into the store URL and the image reference. */
  static String[] splitImageUrl(String url) {
    int slash = url.lastIndexOf('/');
    if (!url.startsWith("s3://") || slash <= "s3://".length()) {
      throw new IllegalArgumentException("want s3://BUCKET[/PREFIX]/NAME[:TAG], got '" + url + "'");
    }
    return new String[] {url.substring(0, slash), url.substring(slash + 1)};
  }
}
