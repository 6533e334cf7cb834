package dev.skiff.scheduler.runner;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * How one call of a handler ended, as the worker reports it: the handler's result, its error (type,
 * message, traceback), or the container's fate (timed out, killed for memory, crashed).
 */
public sealed interface Outcome {
  /** The handler returned {@code output} (JSON). */
  record Success(JsonNode output) implements Outcome {}

  /** The handler raised. */
  record HandlerError(String type, String message, String traceback) implements Outcome {}

  /** The call ran past its timeout; its container was killed. */
  record TimedOut(long timeoutMillis) implements Outcome {}

  /** The container ran out of its memory limit. */
  record OutOfMemory() implements Outcome {}

  /** The container ended mid-call (the handler crashed the process, say): {@code why}. */
  record Crashed(String why) implements Outcome {}
}
