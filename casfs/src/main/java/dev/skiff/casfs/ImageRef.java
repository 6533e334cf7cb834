package dev.skiff.casfs;

import java.util.regex.Pattern;

/** A tag name: {@code name[:tag]}, tag {@code latest} when left out. */
public record ImageRef(String name, String tag) {
  private static final Pattern NAME =
      Pattern.compile("[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*");
  private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");

  public ImageRef {
    if (!NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(
          "bad image name '"
              + name
              + "': use lower-case letters, digits and . _ - separators, with / between path parts");
    }
    if (!TAG.matcher(tag).matches()) {
      throw new IllegalArgumentException(
          "bad tag '" + tag + "': use letters, digits, '_', '.', '-' (up to 128)");
    }
  }

  public static ImageRef parse(String s) {
    int colon = s.lastIndexOf(':');
    int slash = s.lastIndexOf('/');
    if (colon > slash) {
      return new ImageRef(s.substring(0, colon), s.substring(colon + 1));
    }
    return new ImageRef(s, "latest");
  }

  @Override
  public String toString() {
    return name + ":" + tag;
  }
}
