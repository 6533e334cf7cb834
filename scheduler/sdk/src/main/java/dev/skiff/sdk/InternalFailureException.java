package dev.skiff.sdk;

/**
 * The platform could not run the call: its container could not start (the handler's class cannot be
 * loaded, say), or it was lost too many times (a worker gone, a container crashed), or the
 * scheduler cannot be reached.
 */
public final class InternalFailureException extends SkiffException {
  private static final long serialVersionUID = 1L;

  public InternalFailureException(String message) {
    super(message);
  }

  public InternalFailureException(String message, Throwable cause) {
    super(message, cause);
  }
}
