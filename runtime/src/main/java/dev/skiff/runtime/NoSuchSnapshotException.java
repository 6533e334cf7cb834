package dev.skiff.runtime;

import dev.skiff.api.ImageSpec;
import java.io.IOException;

/** An image has no snapshot of that name, here or in its bucket. */
public final class NoSuchSnapshotException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient ImageSpec image;
  private final String name;

  public NoSuchSnapshotException(ImageSpec image, String name) {
    super("no snapshot '" + name + "' of " + image);
    this.image = image;
    this.name = name;
  }

  public ImageSpec image() {
    return image;
  }

  public String name() {
    return name;
  }
}
