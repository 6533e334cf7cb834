package dev.skiff.casfs.image;

import java.io.IOException;

/** An image or archive that cannot be imported; the message names the archive and the entry. */
public class ImportException extends IOException {
  private static final long serialVersionUID = 1L;

  public ImportException(String archive, String entry, String problem) {
    super(archive + (entry == null || entry.isEmpty() ? "" : ": " + entry) + ": " + problem);
  }

  public ImportException(String archive, String entry, String problem, Throwable cause) {
    this(archive, entry, problem);
    initCause(cause);
  }
}
