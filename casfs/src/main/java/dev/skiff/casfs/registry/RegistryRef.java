package dev.skiff.casfs.registry;

import java.util.Locale;
import java.util.regex.Pattern;

/**
 * An image in an OCI registry, as {@code docker://[HOST[:PORT]/]REPOSITORY[:TAG][@DIGEST]} names it
 * (as skopeo does). Without a host it is Docker Hub's ({@code registry-1.docker.io}, with {@code
 * library/} before a one-part repository); without a tag or digest, {@code latest}.
 *
 * @param registry {@code HOST[:PORT]}
 * @param tag the tag, or null when only a digest is given
 * @param digest {@code sha256:...}, or null
 */
public record RegistryRef(String registry, String repository, String tag, String digest) {
  public static final String SCHEME = "docker://";
  static final String DOCKER_HUB = "registry-1.docker.io";

  private static final Pattern REPOSITORY =
      Pattern.compile(
          "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*");
  private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  private static final Pattern DIGEST = Pattern.compile("sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}");

  public RegistryRef {
    if (!REPOSITORY.matcher(repository).matches()) {
      throw new IllegalArgumentException(
          "bad repository '" + repository + "': lower-case letters, digits, '.', '_', '-' and '/'");
    }
    if (tag != null && !TAG.matcher(tag).matches()) {
      throw new IllegalArgumentException("bad tag '" + tag + "'");
    }
    if (digest != null && !DIGEST.matcher(digest).matches()) {
      throw new IllegalArgumentException("bad digest '" + digest + "': want sha256:<64 hex>");
    }
    if (tag == null && digest == null) {
      throw new IllegalArgumentException("a tag or a digest is needed");
    }
  }

  /** Whether {@code text} names an image in a registry. */
  public static boolean is(String text) {
    return text != null && text.startsWith(SCHEME);
  }

  public static RegistryRef parse(String text) {
    if (!is(text)) {
      throw new IllegalArgumentException(
          "want docker://[HOST[:PORT]/]REPOSITORY[:TAG][@DIGEST], got '" + text + "'");
    }
    String rest = text.substring(SCHEME.length());
    String registry = DOCKER_HUB;
    int slash = rest.indexOf('/');
    if (slash > 0) {
      String first = rest.substring(0, slash);
      if (first.contains(".") || first.contains(":") || first.equals("localhost")) {
        registry = first.toLowerCase(Locale.ROOT);
        rest = rest.substring(slash + 1);
      }
    }
    String digest = null;
    int at = rest.indexOf('@');
    if (at >= 0) {
      digest = rest.substring(at + 1);
      rest = rest.substring(0, at);
    }
    String tag = null;
    int colon = rest.lastIndexOf(':');
    if (colon > rest.lastIndexOf('/')) {
      tag = rest.substring(colon + 1);
      rest = rest.substring(0, colon);
    }
    if (tag == null && digest == null) {
      tag = "latest";
    }
    if (registry.equals(DOCKER_HUB) && !rest.contains("/")) {
      rest = "library/" + rest;
    }
    return new RegistryRef(registry, rest, tag, digest);
  }

  /** What the registry's API names the manifest by: the digest if given, else the tag. */
  public String reference() {
    return digest != null ? digest : tag;
  }

  /** The same repository with another tag (no digest). */
  public RegistryRef withTag(String t) {
    return new RegistryRef(registry, repository, t, null);
  }

  @Override
  public String toString() {
    return SCHEME
        + registry
        + "/"
        + repository
        + (tag != null ? ":" + tag : "")
        + (digest != null ? "@" + digest : "");
  }
}
