package dev.skiff.sdk;

/**
 * What went wrong with a call, on the platform's side or the handler's; the subclasses say which.
 * Unchecked, as the failures of a remote call are in most Java clients.
 */
public class SkiffException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public SkiffException(String message) {
    super(message);
  }

  public SkiffException(String message, Throwable cause) {
    super(message, cause);
  }
}
