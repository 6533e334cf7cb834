package dev.skiff.casfs;

import dev.skiff.api.ImageRef;
import java.io.IOException;

/**
 * A tag blob that cannot be read as a tag: which image it was for is known, what it named is not.
 */
public final class DamagedTagException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient ImageRef ref;
  private final String reason;

  public DamagedTagException(ImageRef ref, String reason) {
    super("tag " + ref + " is unreadable: " + reason);
    this.ref = ref;
    this.reason = reason;
  }

  public ImageRef ref() {
    return ref;
  }

  public String reason() {
    return reason;
  }
}
