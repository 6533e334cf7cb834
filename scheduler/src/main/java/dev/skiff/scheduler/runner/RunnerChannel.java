package dev.skiff.scheduler.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * The worker's end of the channel to an in-container runner: the runner process's stdin and stdout
 * (which work inside gVisor with no network), carrying frames of a 4-byte big-endian length and
 * UTF-8 JSON. See {@code skiff_runner.py} for the messages. The runner's stderr, where the
 * handler's prints go, is not part of the channel.
 *
 * <p>Not thread safe: one caller at a time (a container runs one call at a time).
 */
public final class RunnerChannel {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The largest frame either side may send; larger payloads travel through the blob store. */
  public static final int MAX_FRAME = 2 << 20;

  private final DataOutputStream toRunner;
  private final DataInputStream fromRunner;
  private long nextId;

  public RunnerChannel(OutputStream runnerStdin, InputStream runnerStdout) {
    this.toRunner = new DataOutputStream(runnerStdin);
    this.fromRunner = new DataInputStream(runnerStdout);
  }

  /** What the runner said once it imported the handler (or failed to). */
  public record Ready(boolean ok, long pid, Outcome.HandlerError error) {}

  /** Waits for the runner's first frame. */
  public Ready awaitReady() throws IOException {
    JsonNode m = receive();
    if (m.path("ready").asBoolean()) {
      return new Ready(true, m.path("pid").asLong(), null);
    }
    return new Ready(false, 0, error(m.path("error")));
  }

  /**
   * Sends one call and returns the runner's answer: {@link Outcome.Success} or {@link
   * Outcome.HandlerError}. An {@link IOException} means the channel broke (the container died).
   */
  public Outcome call(JsonNode args, JsonNode kwargs) throws IOException {
    String id = Long.toString(++nextId);
    ObjectNode request = JSON.createObjectNode();
    request.put("id", id);
    request.set("args", args == null ? JSON.createArrayNode() : args);
    request.set("kwargs", kwargs == null ? JSON.createObjectNode() : kwargs);
    send(request);
    JsonNode reply = receive();
    if (!id.equals(reply.path("id").asText())) {
      throw new IOException("the runner answered call " + reply.path("id") + ", not " + id);
    }
    return reply.path("ok").asBoolean()
        ? new Outcome.Success(reply.path("output"))
        : error(reply.path("error"));
  }

  /** Tells the runner that no more calls come (it exits). */
  public void close() throws IOException {
    toRunner.close();
  }

  private static Outcome.HandlerError error(JsonNode e) {
    return new Outcome.HandlerError(
        e.path("type").asText("Error"),
        e.path("message").asText(""),
        e.path("traceback").asText(""));
  }

  private void send(JsonNode message) throws IOException {
    byte[] body = JSON.writeValueAsBytes(message);
    if (body.length > MAX_FRAME) {
      throw new IllegalArgumentException(
          "input of " + body.length + " bytes is over the " + MAX_FRAME + " a call may carry");
    }
    toRunner.writeInt(body.length);
    toRunner.write(body);
    toRunner.flush();
  }

  private JsonNode receive() throws IOException {
    int length;
    try {
      length = fromRunner.readInt();
    } catch (EOFException e) {
      throw new EOFException("the runner ended (its container exited or was killed)");
    }
    if (length < 0 || length > MAX_FRAME) {
      throw new IOException("the runner sent a frame of " + length + " bytes");
    }
    byte[] body = new byte[length];
    fromRunner.readFully(body);
    return JSON.readTree(body);
  }
}
