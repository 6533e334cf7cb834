package dev.skiff.casfs.store;

import java.net.URI;

/**
 * Where a store lives in S3: {@code s3://bucket/prefix}, plus how to reach the service. A null
 * endpoint means AWS (or {@code AWS_ENDPOINT_URL}); a null region means the usual AWS places
 * (environment, profile), else us-east-1.
 */
public record S3Location(
    String bucket, String prefix, URI endpoint, String region, boolean pathStyle) {
  public S3Location {
    if (bucket == null || !bucket.matches("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")) {
      throw new IllegalArgumentException("bad S3 bucket name '" + bucket + "'");
    }
    prefix = prefix == null ? "" : prefix.replaceAll("^/+|/+$", "");
  }

  /** Parses {@code s3://bucket[/prefix]}. */
  public static S3Location parse(String url, URI endpoint, String region, boolean pathStyle) {
    if (!url.startsWith("s3://")) {
      throw new IllegalArgumentException("not an s3:// URL: '" + url + "'");
    }
    String rest = url.substring(5);
    int slash = rest.indexOf('/');
    return new S3Location(
        slash < 0 ? rest : rest.substring(0, slash),
        slash < 0 ? "" : rest.substring(slash + 1),
        endpoint,
        region,
        pathStyle);
  }

  public String url() {
    return "s3://" + bucket + (prefix.isEmpty() ? "" : "/" + prefix);
  }

  String key(String name) {
    return prefix.isEmpty() ? name : prefix + "/" + name;
  }

  @Override
  public String toString() {
    return url() + (endpoint == null ? "" : " at " + endpoint);
  }
}
