package dev.skiff.casfs.index;

import java.io.IOException;
import java.nio.file.Path;

/**
 * An image index that must not be used: truncated, not an index at all, or not the bytes its digest
 * names. Its content is never served; {@link #reason()} says what is wrong with it.
 */
public final class DamagedIndexException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient Path file;
  private final String reason;

  public DamagedIndexException(Path file, String reason) {
    super("image index " + file + " is damaged: " + reason);
    this.file = file;
    this.reason = reason;
  }

  public Path file() {
    return file;
  }

  /** What is wrong, without the file name: "truncated (...)", "digest mismatch (...)". */
  public String reason() {
    return reason;
  }
}
