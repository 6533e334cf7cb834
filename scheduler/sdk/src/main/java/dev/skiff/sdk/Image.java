package dev.skiff.sdk;

import dev.skiff.api.ImageSpec;
import java.util.Objects;

/**
 * The image a function runs on: a name in the scheduler's hosts' stores ({@code myimage:1}) or an
 * image in a bucket ({@code s3://bucket/prefix/myimage:1}), with the JVM in it that runs Java
 * functions. Immutable.
 */
public final class Image {
  private final ImageSpec spec;
  private final String jvm;

  private Image(ImageSpec spec, String jvm) {
    this.spec = spec;
    this.jvm = jvm;
  }

  /**
   * An image by name; its Java functions run on the {@code java} found on the image's PATH.
   *
   * @throws IllegalArgumentException if {@code image} is not an image name
   */
  public static Image of(String image) {
    return new Image(ImageSpec.parse(Objects.requireNonNull(image, "image")), "");
  }

  /**
   * This image, its Java functions run by the JVM at {@code java} (say {@code /opt/java/bin/java}).
   */
  public Image jvm(String java) {
    if (java == null || java.isBlank()) {
      throw new IllegalArgumentException("the JVM is a path in the image, or a name on its PATH");
    }
    return new Image(spec, java);
  }

  /** The image's spec, as the control plane names it. */
  public ImageSpec spec() {
    return spec;
  }

  /** The JVM that runs Java functions ("" for {@code java} on the image's PATH). */
  public String jvm() {
    return jvm;
  }

  @Override
  public String toString() {
    return spec + (jvm.isEmpty() ? "" : " (JVM " + jvm + ")");
  }
}
