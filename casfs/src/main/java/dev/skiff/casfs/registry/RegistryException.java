package dev.skiff.casfs.registry;

import java.io.IOException;

/** A registry refused or failed a request; the message says which, how, and what it answered. */
public final class RegistryException extends IOException {
  private final int status;

  public RegistryException(String message, int status) {
    super(message);
    this.status = status;
  }

  /** The HTTP status, or 0 where none came (the registry could not be reached). */
  public int status() {
    return status;
  }
}
