package dev.skiff.scheduler.runner;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * How one call of a handler ended, as the worker reports it: the handler's result, its error (type,
 * message, traceback), or the container's fate (timed out, killed for memory, crashed).
 */
public sealed interface Outcome {
  /** The handler returned {@code output} (JSON) after running {@code micros}. */
  record Success(JsonNode output, long micros) implements Outcome {
    public Success(JsonNode output) {
      this(output, 0);
    }
  }

  /** The handler raised, after running {@code micros}. */
  record HandlerError(String type, String message, String traceback, long micros)
      implements Outcome {
    public HandlerError(String type, String message, String traceback) {
      this(type, message, traceback, 0);
    }
  }

  /** The call ran past its timeout; its container was killed. */
  record TimedOut(long timeoutMillis) implements Outcome {}

  /** The container ran out of its memory limit. */
  record OutOfMemory() implements Outcome {}

  /** The container ended mid-call (the handler crashed the process, say): {@code why}. */
  record Crashed(String why) implements Outcome {}
}
