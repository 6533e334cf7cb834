package dev.skiff.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.Status;
import java.io.PrintStream;

/**
 * How the command line writes a call's input and reads its outcome. An input is one JSON value: an
 * object gives keyword arguments, an array positional arguments, anything else one positional
 * argument. A call's exit code says how it ended.
 */
final class Inputs {
  private static final ObjectMapper JSON = new ObjectMapper();

  private Inputs() {}

  static Input parse(String json) {
    JsonNode n;
    try {
      n = JSON.readTree(json);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalArgumentException(
          "the input is not JSON (" + e.getOriginalMessage() + "): " + shorten(json));
    }
    if (n == null || n.isMissingNode()) {
      throw new IllegalArgumentException("the input is empty: want a JSON value");
    }
    if (n.isObject()) {
      return ControlClient.input("", n.toString());
    }
    if (n.isArray()) {
      return ControlClient.input(n.toString(), "");
    }
    return ControlClient.input(JSON.createArrayNode().add(n).toString(), "");
  }

  private static String shorten(String s) {
    return s.length() > 60 ? s.substring(0, 57) + "..." : s;
  }

  /** The exit code of a call that ended with {@code status}. */
  static int exitCode(Status status) {
    return switch (status) {
      case SUCCESS -> 0;
      case HANDLER_ERROR -> 1;
      case TIMEOUT -> 124;
      case OUT_OF_MEMORY -> 137;
      case CANCELLED -> 130;
      case PENDING, RUNNING -> 75;
      default -> 70;
    };
  }

  /** Prints a failed call's type, message and traceback. */
  static void printFailure(Result r, PrintStream err) {
    var f = r.getFailure();
    if (!f.getTraceback().isEmpty()) {
      err.print(f.getTraceback().endsWith("\n") ? f.getTraceback() : f.getTraceback() + "\n");
    }
    err.printf(
        "%s: %s (%s, call %s, %d attempt%s)%n",
        f.getType().isEmpty() ? r.getStatus().name() : f.getType(),
        f.getMessage(),
        describe(r.getStatus()),
        r.getCallId(),
        r.getAttempts(),
        r.getAttempts() == 1 ? "" : "s");
  }

  static String describe(Status s) {
    return switch (s) {
      case SUCCESS -> "success";
      case HANDLER_ERROR -> "handler error";
      case TIMEOUT -> "timed out";
      case OUT_OF_MEMORY -> "killed for memory";
      case CANCELLED -> "cancelled";
      case INTERNAL -> "internal failure";
      case PENDING -> "pending";
      case RUNNING -> "running";
      default -> s.name().toLowerCase(java.util.Locale.ROOT);
    };
  }

  /**
   * A JSON line for {@code map}: the output (raw bytes as a base64 string), or with {@code
   * --return-exceptions} {"error": ...}.
   */
  static String line(Result r) {
    if (r.getStatus() == Status.SUCCESS) {
      if (r.hasOutputRaw()) { // bytes in a JSON line: base64, as JSON tools take them
        return JSON.getNodeFactory()
            .textNode(java.util.Base64.getEncoder().encodeToString(r.getOutputRaw().toByteArray()))
            .toString();
      }
      return r.getOutputJson().toStringUtf8();
    }
    var e = JSON.createObjectNode();
    e.putObject("error")
        .put("status", describe(r.getStatus()))
        .put("type", r.getFailure().getType())
        .put("message", r.getFailure().getMessage())
        .put("traceback", r.getFailure().getTraceback())
        .put("call_id", r.getCallId());
    return e.toString();
  }
}
