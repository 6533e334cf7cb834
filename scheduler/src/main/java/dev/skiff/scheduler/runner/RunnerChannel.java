package dev.skiff.scheduler.runner;

import com.fasterxml.jackson.core.io.JsonStringEncoder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.scheduler.Payloads;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The worker's end of the channel to an in-container runner: the runner process's stdin and stdout
 * (which work inside gVisor with no network), carrying frames of a 4-byte big-endian length and
 * UTF-8 JSON. See {@code skiff_runner.py} for the messages. The runner's stderr, where the
 * handler's prints go, is not part of the channel.
 *
 * <p>Calls may overlap (a runner started with a concurrency above 1 answers them as they finish):
 * {@link #call} sends a request and returns a future; once {@link #awaitReady} has returned, one
 * reader thread completes the futures by call id. When the channel breaks (the container died)
 * every call still waiting fails with an {@link IOException}.
 */
public final class RunnerChannel {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * The largest frame either side may send (a payload and its envelope); larger ones are refused.
   * The channel is a local pipe: payloads over 2 MiB reach it through the payload store.
   */
  public static final int MAX_FRAME = (int) Payloads.MAX_BYTES + (1 << 20);

  private final DataOutputStream toRunner;
  private final DataInputStream fromRunner;
  private final AtomicLong nextId = new AtomicLong();
  private final Map<String, CompletableFuture<Outcome>> waiting = new ConcurrentHashMap<>();
  private final Map<String, Long> timeouts = new ConcurrentHashMap<>();
  private volatile IOException broken;
  private final CompletableFuture<Void> ended = new CompletableFuture<>();

  public RunnerChannel(OutputStream runnerStdin, InputStream runnerStdout) {
    this.toRunner = new DataOutputStream(new java.io.BufferedOutputStream(runnerStdin, 1 << 16));
    this.fromRunner = new DataInputStream(runnerStdout);
  }

  /** What the runner said once it imported the handler (or failed to). */
  public record Ready(boolean ok, long pid, Outcome.HandlerError error) {}

  /** Waits for the runner's first frame, then starts reading answers. */
  public Ready awaitReady() throws IOException {
    JsonNode m = receive();
    if (!m.path("ready").asBoolean()) {
      return new Ready(false, 0, error(m.path("error")));
    }
    startReading();
    return new Ready(true, m.path("pid").asLong(), null);
  }

  /**
   * Tells a warm runner (restored from a snapshot of a JVM that waits for its function) which
   * function to load, with the environment it runs in, then waits for it to load as {@link
   * #awaitReady} does.
   */
  public Ready load(String handler, String codeDir, int concurrency, Map<String, String> env)
      throws IOException {
    var load = JSON.createObjectNode();
    var l = load.putObject("load");
    l.put("handler", handler).put("code", codeDir == null ? "" : codeDir);
    l.put("concurrency", concurrency);
    var e = l.putObject("env");
    env.forEach(e::put);
    byte[] body = JSON.writeValueAsBytes(load);
    synchronized (toRunner) {
      toRunner.writeInt(body.length);
      toRunner.write(body);
      toRunner.flush();
    }
    return awaitReady();
  }

  /**
   * Starts reading answers without a ready frame: for a runner restored from a snapshot, which said
   * it was ready before the snapshot was taken.
   */
  public void startReading() {
    Thread.ofPlatform().daemon().name("skiff-runner-channel").start(this::readAnswers);
  }

  private void readAnswers() {
    try {
      while (true) {
        JsonNode reply = receive();
        CompletableFuture<Outcome> f = waiting.remove(reply.path("id").asText());
        if (f == null) {
          throw new IOException("the runner answered call " + reply.path("id") + ", never asked");
        }
        long us = reply.path("us").asLong();
        Outcome o;
        if (reply.path("ok").asBoolean()) {
          o = new Outcome.Success(reply.path("output"), us);
        } else if (reply.path("out_of_memory").asBoolean()) {
          o = new Outcome.OutOfMemory();
        } else if (reply.path("timed_out").asBoolean()) {
          o = new Outcome.TimedOut(timeouts.getOrDefault(reply.path("id").asText(), 0L));
        } else {
          Outcome.HandlerError e = error(reply.path("error"));
          o = new Outcome.HandlerError(e.type(), e.message(), e.traceback(), us);
        }
        timeouts.remove(reply.path("id").asText());
        f.complete(o);
      }
    } catch (IOException e) {
      broken = e;
      waiting.values().forEach(f -> f.completeExceptionally(e));
      waiting.clear();
      ended.complete(null);
    }
  }

  /** Completes when the reader has stopped: the runner ended or the channel broke. */
  public CompletableFuture<Void> ended() {
    return ended;
  }

  /**
   * Sends one call, named {@code callId} (unique among the calls running; null for a number), with
   * its arguments as JSON text (an array and an object; empty for none) and its timeout, which the
   * runner counts from when the call starts (0: none). The future gives the runner's answer: {@link
   * Outcome.Success}, {@link Outcome.HandlerError}, {@link Outcome.TimedOut} or {@link
   * Outcome.OutOfMemory} (the runner exits after those two), or fails with an {@link IOException}
   * if the channel breaks first.
   *
   * @throws IllegalArgumentException if the request is over {@link #MAX_FRAME}
   */
  public CompletableFuture<Outcome> call(
      String callId, String argsJson, String kwargsJson, long timeoutMillis) {
    String id = callId != null ? callId : Long.toString(nextId.incrementAndGet());
    StringBuilder json = new StringBuilder(64 + argsJson.length() + kwargsJson.length());
    json.append("{\"id\":\"");
    JsonStringEncoder.getInstance().quoteAsString(id, json);
    json.append("\",\"args\":")
        .append(argsJson.isEmpty() ? "[]" : argsJson)
        .append(",\"kwargs\":")
        .append(kwargsJson.isEmpty() ? "{}" : kwargsJson)
        .append(",\"timeout_ms\":")
        .append(timeoutMillis)
        .append('}');
    byte[] body = json.toString().getBytes(StandardCharsets.UTF_8);
    if (body.length > MAX_FRAME) {
      throw new IllegalArgumentException(
          "an input of "
              + body.length
              + " bytes is over the "
              + (Payloads.MAX_BYTES >> 20)
              + " MiB a call may carry");
    }
    CompletableFuture<Outcome> f = new CompletableFuture<>();
    waiting.put(id, f);
    timeouts.put(id, timeoutMillis);
    try {
      synchronized (toRunner) {
        toRunner.writeInt(body.length);
        toRunner.write(body);
        toRunner.flush();
      }
    } catch (IOException e) {
      waiting.remove(id);
      f.completeExceptionally(e);
    }
    IOException b = broken;
    if (b != null && waiting.remove(id) != null) {
      f.completeExceptionally(b);
    }
    return f;
  }

  /** {@link #call(String, String, String, long)} with parsed arguments. */
  public CompletableFuture<Outcome> call(
      String callId, JsonNode args, JsonNode kwargs, long timeoutMillis) {
    return call(
        callId,
        args == null ? "" : args.toString(),
        kwargs == null ? "" : kwargs.toString(),
        timeoutMillis);
  }

  /** Tells the runner that no more calls come (it exits once the running ones answer). */
  public void close() throws IOException {
    synchronized (toRunner) {
      toRunner.close();
    }
  }

  private static Outcome.HandlerError error(JsonNode e) {
    return new Outcome.HandlerError(
        e.path("type").asText("Error"),
        e.path("message").asText(""),
        e.path("traceback").asText(""));
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
