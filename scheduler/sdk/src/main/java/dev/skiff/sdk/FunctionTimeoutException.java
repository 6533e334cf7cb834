package dev.skiff.sdk;

/**
 * The handler ran past its function's timeout (on its last attempt); its container was replaced.
 */
public final class FunctionTimeoutException extends SkiffException {
  private static final long serialVersionUID = 1L;

  public FunctionTimeoutException(String message) {
    super(message);
  }
}
