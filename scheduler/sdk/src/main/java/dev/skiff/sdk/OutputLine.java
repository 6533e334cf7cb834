package dev.skiff.sdk;

/**
 * A line a function's container printed (stdout or stderr), with the call it printed it in ("" for
 * a line printed outside a call, as while loading the handler).
 */
public record OutputLine(String function, String callId, String line, long timeMillis) {
  /** {@code [app/name call-id] line}. */
  @Override
  public String toString() {
    return "[" + function + (callId.isEmpty() ? "" : " " + callId) + "] " + line;
  }
}
