package dev.skiff.sdk;

/** The handler went past its function's memory limit; its container was killed and replaced. */
public final class OutOfMemoryException extends SkiffException {
  private static final long serialVersionUID = 1L;

  public OutOfMemoryException(String message) {
    super(message);
  }
}
