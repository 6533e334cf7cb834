package dev.skiff.scheduler.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.ByteString;

/**
 * How one call of a handler ended, as the worker reports it: the handler's result, its error (type,
 * message, traceback), or the container's fate (timed out, killed for memory, crashed).
 */
public sealed interface Outcome {
  /**
   * The handler returned {@code json} (UTF-8 JSON) after running {@code micros}; with {@code raw},
   * the bytes it returned as they are ({@code byte[]} in Java, {@code bytes} in Python).
   */
  record Success(ByteString json, long micros, boolean raw) implements Outcome {
    public Success(ByteString json, long micros) {
      this(json, micros, false);
    }

    public Success(JsonNode output) {
      this(ByteString.copyFromUtf8(output.toString()), 0);
    }

    /** The output, parsed. */
    public JsonNode output() {
      try {
        return JSON.readTree(json.newInput());
      } catch (java.io.IOException e) {
        throw new IllegalStateException("a runner's output is not JSON: " + e.getMessage(), e);
      }
    }

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON =
        new com.fasterxml.jackson.databind.ObjectMapper();
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
