package dev.skiff.scheduler.runner;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.io.JsonStringEncoder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.skiff.scheduler.Payloads;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The worker's end of the channel to an in-container runner: the runner process's stdin and stdout
 * (which work inside gVisor with no network), carrying frames of a 4-byte big-endian length and
 * UTF-8 JSON; a message with {@code "raw": N} is followed by a frame of N raw bytes (a call's one
 * argument, or a handler's result, as bytes). See {@code skiff_runner.py} for the messages. The
 * runner's stderr, where the handler's prints go, is not part of the channel.
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
        Reply reply = Reply.parse(receiveBytes());
        if (reply.raw >= 0) {
          byte[] raw = receiveBytes();
          if (raw.length != reply.raw) {
            throw new IOException(
                "the runner said " + reply.raw + " raw bytes and sent " + raw.length);
          }
          reply.output = UnsafeByteOperations.unsafeWrap(raw);
        }
        CompletableFuture<Outcome> f = waiting.remove(reply.id);
        if (f == null) {
          throw new IOException("the runner answered call " + reply.id + ", never asked");
        }
        Outcome o;
        if (reply.ok) {
          o = new Outcome.Success(reply.output, reply.us, reply.raw >= 0);
        } else if (reply.outOfMemory) {
          o = new Outcome.OutOfMemory();
        } else if (reply.timedOut) {
          o = new Outcome.TimedOut(timeouts.getOrDefault(reply.id, 0L));
        } else {
          Outcome.HandlerError e = error(reply.error);
          o = new Outcome.HandlerError(e.type(), e.message(), e.traceback(), reply.us);
        }
        timeouts.remove(reply.id);
        f.complete(o);
      }
    } catch (IOException e) {
      broken = e;
      waiting.values().forEach(f -> f.completeExceptionally(e));
      waiting.clear();
      ended.complete(null);
    }
  }

  /**
   * A runner's answer, read token by token: the output is kept as the bytes of its JSON, a slice of
   * the frame, never parsed into a tree and written out again (for a large output that was most of
   * a call's cost on the worker).
   */
  private static final class Reply {
    String id = "";
    boolean ok;
    boolean outOfMemory;
    boolean timedOut;
    long us;
    long raw = -1; // the length of the raw result in the next frame, if one follows
    ByteString output = NULL;
    JsonNode error = com.fasterxml.jackson.databind.node.MissingNode.getInstance();

    static Reply parse(byte[] body) throws IOException {
      Reply r = new Reply();
      try (JsonParser p = JSON.getFactory().createParser(body)) {
        if (p.nextToken() != JsonToken.START_OBJECT) {
          throw new IOException("the runner sent a frame that is not a JSON object");
        }
        int outputFrom = -1;
        while (true) {
          JsonToken t = p.nextToken();
          if (outputFrom >= 0) {
            // The output ends where this token starts, less the comma and space between: a
            // string's end is known only once the parser has moved past it (unread, not decoded).
            int to = (int) p.currentTokenLocation().getByteOffset();
            while (to > outputFrom
                && (body[to - 1] == ',' || Character.isWhitespace(body[to - 1]))) {
              to--;
            }
            r.output = UnsafeByteOperations.unsafeWrap(body, outputFrom, to - outputFrom);
            outputFrom = -1;
          }
          if (t != JsonToken.FIELD_NAME) {
            break;
          }
          String field = p.currentName();
          JsonToken value = p.nextToken();
          switch (field) {
            case "id" -> r.id = p.getValueAsString("");
            case "ok" -> r.ok = value == JsonToken.VALUE_TRUE;
            case "out_of_memory" -> r.outOfMemory = value == JsonToken.VALUE_TRUE;
            case "timed_out" -> r.timedOut = value == JsonToken.VALUE_TRUE;
            case "us" -> r.us = p.getValueAsLong(0);
            case "raw" -> r.raw = p.getValueAsLong(-1);
            case "error" -> r.error = JSON.readTree(p);
            case "output" -> {
              outputFrom = (int) p.currentTokenLocation().getByteOffset();
              p.skipChildren();
            }
            default -> p.skipChildren();
          }
        }
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        throw new IOException(
            "the runner sent a frame that is not JSON: " + e.getOriginalMessage());
      }
      return r;
    }
  }

  private static final ByteString NULL = ByteString.copyFromUtf8("null");

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
      String callId, ByteString argsJson, ByteString kwargsJson, long timeoutMillis) {
    String id = callId != null ? callId : Long.toString(nextId.incrementAndGet());
    StringBuilder head = new StringBuilder(32).append("{\"id\":\"");
    JsonStringEncoder.getInstance().quoteAsString(id, head);
    ByteString body =
        ByteString.copyFromUtf8(head.append("\",\"args\":").toString())
            .concat(argsJson.isEmpty() ? EMPTY_ARRAY : argsJson)
            .concat(KWARGS)
            .concat(kwargsJson.isEmpty() ? EMPTY_OBJECT : kwargsJson)
            .concat(ByteString.copyFromUtf8(",\"timeout_ms\":" + timeoutMillis + "}"));
    return send(id, body, null, timeoutMillis);
  }

  /** Sends a call's frame (and its raw frame, if any) and returns the future of its answer. */
  private CompletableFuture<Outcome> send(
      String id, ByteString body, ByteString raw, long timeoutMillis) {
    long size = body.size() + (raw == null ? 0 : raw.size());
    if (size > MAX_FRAME) {
      throw new IllegalArgumentException(
          "an input of "
              + size
              + " bytes is over the "
              + (Payloads.MAX_BYTES >> 20)
              + " MiB a call may carry");
    }
    CompletableFuture<Outcome> f = new CompletableFuture<>();
    waiting.put(id, f);
    timeouts.put(id, timeoutMillis);
    try {
      synchronized (toRunner) {
        toRunner.writeInt(body.size());
        body.writeTo(toRunner);
        if (raw != null) {
          toRunner.writeInt(raw.size());
          raw.writeTo(toRunner);
        }
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

  /**
   * Sends one call whose one argument is {@code raw} bytes (see {@link #call}): a frame saying so,
   * then the bytes as they are.
   */
  public CompletableFuture<Outcome> callRaw(String callId, ByteString raw, long timeoutMillis) {
    String id = callId != null ? callId : Long.toString(nextId.incrementAndGet());
    StringBuilder head = new StringBuilder(48).append("{\"id\":\"");
    JsonStringEncoder.getInstance().quoteAsString(id, head);
    ByteString body =
        ByteString.copyFromUtf8(
            head.append("\",\"raw\":")
                .append(raw.size())
                .append(",\"timeout_ms\":")
                .append(timeoutMillis)
                .append('}')
                .toString());
    return send(id, body, raw, timeoutMillis);
  }

  private static final ByteString EMPTY_ARRAY = ByteString.copyFromUtf8("[]");
  private static final ByteString EMPTY_OBJECT = ByteString.copyFromUtf8("{}");
  private static final ByteString KWARGS = ByteString.copyFromUtf8(",\"kwargs\":");

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
    return JSON.readTree(receiveBytes());
  }

  private byte[] receiveBytes() throws IOException {
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
    return body;
  }
}
