package dev.skiff.casfs.cache;

import java.io.IOException;

/** A chunk's bytes did not match its digest. The bytes were not served and not cached. */
public class CorruptChunkException extends IOException {
  private static final long serialVersionUID = 1L;

  public CorruptChunkException(String message) {
    super(message);
  }
}
