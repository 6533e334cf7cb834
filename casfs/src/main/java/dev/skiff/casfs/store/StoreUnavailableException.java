package dev.skiff.casfs.store;

import java.io.IOException;

/**
 * A call to a remote store failed at once, without going out: a recent call got no answer (a
 * timeout, a refused or reset connection), so the store counts as down until a call gets through.
 * The message names the store and the last error.
 */
public class StoreUnavailableException extends IOException {
  private static final long serialVersionUID = 1L;

  public StoreUnavailableException(String message) {
    super(message);
  }
}
