package dev.skiff.scheduler.worker;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.ByteString;
import dev.skiff.api.ImageSpec;
import dev.skiff.runtime.ExitStatus;
import dev.skiff.runtime.Sandbox;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxProcess;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.Snapshot;
import dev.skiff.scheduler.runner.JavaRunnerJars;
import dev.skiff.scheduler.runner.Outcome;
import dev.skiff.scheduler.runner.PythonRunner;
import dev.skiff.scheduler.runner.RunnerChannel;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One container of a function: a sandbox on the function's image whose first process is Skiff's
 * runner, with the runner and the function's code bound in read-only. The runner imports the
 * handler once and then serves calls over its {@link RunnerChannel}, up to {@code concurrency} at
 * once. What the handler prints goes, line by line and tagged with its call, to the {@link
 * LogSink}.
 *
 * <p>With a snapshot name, the container is checkpointed right after the import ({@link
 * #startAndSnapshot}) and later containers are restored from that snapshot ({@link #restore}),
 * skipping the interpreter's start and the import.
 *
 * <p>A call that runs past its timeout ends the container ({@link Outcome.TimedOut}); when the
 * container dies, every call still running ends: {@link Outcome.OutOfMemory} when its memory limit
 * killed it, else {@link Outcome.Crashed}. A dead container serves no more calls ({@link #alive()},
 * {@link #ended()}). Thread safe.
 */
public final class FunctionContainer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(FunctionContainer.class);

  /** Receives what a container's handler prints: the call it printed in ("" outside one). */
  @FunctionalInterface
  public interface LogSink {
    LogSink NONE = (container, call, line) -> {};

    void line(String container, String call, String line);
  }

  /** The handler could not be imported; nothing runs. */
  public static final class ImportFailedException extends IOException {
    private static final long serialVersionUID = 1L;

    private final transient Outcome.HandlerError error;

    ImportFailedException(String handler, Outcome.HandlerError error) {
      super("importing " + handler + " failed: " + error.type() + ": " + error.message());
      this.error = error;
    }

    public Outcome.HandlerError error() {
      return error;
    }
  }

  /**
   * What to start: a handler in {@code language} ("python": {@code module:function}; "java": {@code
   * CLASS::METHOD} or {@code CLASS#METHOD}) run by {@code interpreter} (python3, java: a path or a
   * name on the image's PATH) on an image, with its code directory (null when the handler is in the
   * image; for Java, the class path's jars), how many calls may run at once, and the sandbox's
   * options (resources, env, user).
   */
  public record Spec(
      ImageSpec image,
      String language,
      String interpreter,
      String handler,
      Path codeDir,
      int concurrency,
      SandboxOptions options) {
    public Spec {
      if (concurrency < 1) {
        throw new IllegalArgumentException("concurrency must be at least 1");
      }
      if (!language.equals("python") && !language.equals("java")) {
        throw new IllegalArgumentException("unknown language " + language);
      }
    }

    /** A Python function's container. */
    public static Spec python(
        ImageSpec image,
        String python,
        String handler,
        Path codeDir,
        int concurrency,
        SandboxOptions options) {
      return new Spec(image, "python", python, handler, codeDir, concurrency, options);
    }

    /** The sandbox's options with the runner's volumes, and no entrypoint of the image's. */
    SandboxOptions sandboxOptions(Path runnerDir) {
      SandboxOptions.Builder o = options.toBuilder().entrypoint(List.of());
      PythonRunner.volumes(runnerDir, codeDir).forEach(o::volume);
      return o.build();
    }

    List<String> command() {
      return language.equals("java")
          ? JavaRunnerJars.command(interpreter, handler, codeDir != null, concurrency)
          : PythonRunner.command(interpreter, handler, codeDir != null, concurrency);
    }
  }

  private final Sandbox sandbox;
  private final SandboxProcess runner;
  private final RunnerChannel channel;
  private final ScheduledExecutorService timers;
  private final int slots;
  private final Set<String> running = ConcurrentHashMap.newKeySet();
  private final Set<String> timedOut = ConcurrentHashMap.newKeySet();
  private final CompletableFuture<String> ended = new CompletableFuture<>();
  private volatile boolean closed;
  private volatile boolean outOfMemory;

  /** How much longer than a call's timeout the backstop timer waits for the runner to act. */
  static final long BACKSTOP_GRACE_MS = 5000;

  private FunctionContainer(
      Sandbox sandbox,
      SandboxProcess runner,
      RunnerChannel channel,
      ScheduledExecutorService timers,
      int slots) {
    this.sandbox = sandbox;
    this.runner = runner;
    this.channel = channel;
    this.timers = timers;
    this.slots = slots;
  }

  /**
   * Starts a container: the sandbox, the runner as its first process, and the handler's import.
   *
   * @throws ImportFailedException if the handler cannot be imported
   */
  public static FunctionContainer start(
      SandboxRuntime rt, Spec spec, Path runnerDir, ScheduledExecutorService timers, LogSink logs)
      throws IOException {
    Sandbox sb = rt.run(spec.image(), spec.sandboxOptions(runnerDir), spec.command(), true);
    try {
      FunctionContainer c = attach(sb, spec, timers, logs);
      awaitImport(c, spec);
      c.watch();
      return c;
    } catch (IOException | RuntimeException e) {
      sb.close();
      throw e;
    }
  }

  /**
   * Starts a container as {@link #start} does, then checkpoints it right after the import as
   * snapshot {@code name} of the image (the sandbox stops) and returns the snapshot, for {@link
   * #restore}.
   */
  public static Snapshot startAndSnapshot(
      SandboxRuntime rt,
      Spec spec,
      Path runnerDir,
      ScheduledExecutorService timers,
      LogSink logs,
      String name)
      throws IOException {
    // tells the runner a checkpoint follows its start (a Java runner compacts its heap for it)
    SandboxOptions o = spec.sandboxOptions(runnerDir).toBuilder().env("SKIFF_SNAPSHOT=1").build();
    try (Sandbox sb = rt.run(spec.image(), o, spec.command(), true)) {
      FunctionContainer c = attach(sb, spec, timers, logs);
      awaitImport(c, spec);
      return sb.checkpoint(name);
    }
  }

  /**
   * A container restored from a snapshot {@link #startAndSnapshot} took: its runner waits for
   * calls.
   */
  public static FunctionContainer restore(
      SandboxRuntime rt,
      Snapshot snapshot,
      Spec spec,
      Path runnerDir,
      ScheduledExecutorService timers,
      LogSink logs)
      throws IOException {
    Sandbox sb = rt.restore(snapshot, spec.sandboxOptions(runnerDir), true);
    try {
      FunctionContainer c = attach(sb, spec, timers, logs);
      c.channel.startReading();
      c.watch();
      return c;
    } catch (RuntimeException e) {
      sb.close();
      throw e;
    }
  }

  /**
   * Starts a warm JVM on {@code spec}'s image (its interpreter and sandbox options; the handler and
   * code are not read) that waits to be told its function, checkpoints it as snapshot {@code name}
   * (the sandbox stops) and returns the snapshot, for {@link #fromWarmJvm}. {@code emptyCode} is
   * bound where a function's class path goes, so every restore can bind its own there.
   */
  public static Snapshot startWarmJvm(
      SandboxRuntime rt,
      Spec spec,
      Path runnerDir,
      Path emptyCode,
      ScheduledExecutorService timers,
      LogSink logs,
      String name)
      throws IOException {
    Spec warm =
        new Spec(
            spec.image(), "java", spec.interpreter(), "-", emptyCode, 1, SandboxOptions.defaults());
    try (Sandbox sb =
        rt.run(
            warm.image(),
            warm.sandboxOptions(runnerDir),
            JavaRunnerJars.command(warm.interpreter(), "-", false, 1),
            true)) {
      FunctionContainer c = attach(sb, warm, timers, logs);
      awaitImport(c, warm);
      return sb.checkpoint(name);
    }
  }

  /**
   * A container of a Java function restored from a warm JVM's snapshot ({@link #startWarmJvm}): the
   * function's class path is bound in, and the runner loads the handler, with the function's
   * environment, as a fresh start would.
   *
   * @throws ImportFailedException if the handler cannot be loaded
   */
  public static FunctionContainer fromWarmJvm(
      SandboxRuntime rt,
      Snapshot snapshot,
      Spec spec,
      Path runnerDir,
      Path emptyCode,
      ScheduledExecutorService timers,
      LogSink logs)
      throws IOException {
    Spec bound = spec.codeDir() != null ? spec : withCode(spec, emptyCode);
    Sandbox sb = rt.restore(snapshot, bound.sandboxOptions(runnerDir), true);
    try {
      FunctionContainer c = attach(sb, spec, timers, logs);
      Map<String, String> env = new java.util.LinkedHashMap<>();
      for (String e : spec.options().env()) {
        int eq = e.indexOf('=');
        env.put(e.substring(0, eq), e.substring(eq + 1));
      }
      RunnerChannel.Ready ready =
          c.channel.load(
              spec.handler(),
              spec.codeDir() != null ? PythonRunner.CODE : null,
              spec.concurrency(),
              env);
      if (!ready.ok()) {
        throw new ImportFailedException(spec.handler(), ready.error());
      }
      c.watch();
      return c;
    } catch (IOException | RuntimeException e) {
      sb.close();
      throw e;
    }
  }

  private static Spec withCode(Spec s, Path code) {
    return new Spec(
        s.image(), s.language(), s.interpreter(), s.handler(), code, s.concurrency(), s.options());
  }

  private static FunctionContainer attach(
      Sandbox sb, Spec spec, ScheduledExecutorService timers, LogSink logs) {
    SandboxProcess p =
        sb.main().orElseThrow(() -> new IllegalStateException("the sandbox has no first process"));
    FunctionContainer c =
        new FunctionContainer(
            sb, p, new RunnerChannel(p.stdin(), p.stdout()), timers, spec.concurrency());
    c.pumpLogs(logs);
    return c;
  }

  private static void awaitImport(FunctionContainer c, Spec spec) throws IOException {
    RunnerChannel.Ready ready;
    try {
      ready = c.channel.awaitReady();
    } catch (IOException e) {
      Optional<ExitStatus> status;
      try {
        status = c.runner.waitFor(Duration.ofSeconds(5));
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        status = Optional.empty();
      }
      String printed = c.lastErrorLines();
      throw new IOException(
          "the runner did not start in "
              + spec.image()
              + " ("
              + status.map(ExitStatus::toString).orElse("still running")
              + "): "
              + (printed.isEmpty() ? "is " + spec.interpreter() + " in the image?" : printed),
          e);
    }
    if (!ready.ok()) {
      throw new ImportFailedException(spec.handler(), ready.error());
    }
  }

  /**
   * Completes {@link #ended} when the runner's channel breaks (the container died or was closed).
   */
  private void watch() {
    channel
        .ended()
        .whenComplete(
            (v, t) -> {
              String why =
                  !timedOut.isEmpty()
                      ? "a call timed out"
                      : outOfMemory ? "it ran out of memory" : exitDescription();
              ended.complete(why);
            });
  }

  private String exitDescription() {
    if (closed) {
      return "it was stopped";
    }
    try {
      return runner
          .waitFor(Duration.ofSeconds(5))
          .map(s -> s.oomKilled() ? "it ran out of memory" : "its runner ended (" + s + ")")
          .orElse("its runner's channel broke");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "its runner's channel broke";
    }
  }

  // the last lines the container printed to stderr: what a failed start says (runsc's own error)
  private final java.util.ArrayDeque<String> lastErr = new java.util.ArrayDeque<>();
  private volatile Thread logPump;

  /** The last few lines the container printed, oldest first. */
  private String lastErrorLines() {
    Thread t = logPump;
    if (t != null) {
      try {
        t.join(2_000); // the process has ended: what it printed is on its way
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    synchronized (lastErr) {
      return String.join(" | ", lastErr);
    }
  }

  private void pumpLogs(LogSink logs) {
    logPump =
        Thread.ofPlatform()
            .daemon()
            .name("skiff-container-log")
            .start(
                () -> {
                  try (BufferedReader r =
                      new BufferedReader(
                          new InputStreamReader(runner.stderr(), StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) {
                      String call = "";
                      int end;
                      if (line.startsWith("\u001e") && (end = line.indexOf('\u001f')) > 0) {
                        call = line.substring(1, end);
                        line = line.substring(end + 1);
                      } else if (running.size() == 1) {
                        call = running.iterator().next(); // printed from C, say, in the only call
                      }
                      logs.line(sandbox.id(), call, line);
                      synchronized (lastErr) {
                        lastErr.addLast(line.length() > 300 ? line.substring(0, 300) : line);
                        if (lastErr.size() > 3) {
                          lastErr.removeFirst();
                        }
                      }
                    }
                  } catch (IOException | RuntimeException e) {
                    // the container went away
                  }
                });
  }

  /** The container's id (its sandbox's). */
  public String id() {
    return sandbox.id();
  }

  public boolean alive() {
    return !closed && !ended.isDone() && !outOfMemory && timedOut.isEmpty() && runner.isAlive();
  }

  /** Completes with why, once the container has died or was closed. */
  public CompletableFuture<String> ended() {
    return ended;
  }

  /** Calls running now. */
  public int running() {
    return running.size();
  }

  /** {@link #call(String, ByteString, ByteString, Duration)} with parsed arguments (null: none). */
  public CompletableFuture<Outcome> call(
      String callId, JsonNode args, JsonNode kwargs, Duration timeout) {
    return call(
        callId,
        args == null ? "" : args.toString(),
        kwargs == null ? "" : kwargs.toString(),
        timeout);
  }

  /** {@link #call(String, ByteString, ByteString, Duration)} with JSON text (empty: none). */
  public CompletableFuture<Outcome> call(
      String callId, String argsJson, String kwargsJson, Duration timeout) {
    return call(
        callId, ByteString.copyFromUtf8(argsJson), ByteString.copyFromUtf8(kwargsJson), timeout);
  }

  /**
   * Runs one call, {@code callId} naming it in the logs, with its arguments as UTF-8 JSON (an array
   * and an object; empty for none); a timeout of null or zero means none. Calls beyond the
   * container's concurrency wait in the runner's pipe; a call's timeout counts from when it starts
   * there (the runner ends itself when one runs past it, and a timer here is the backstop). The
   * future never fails: a broken container gives an outcome that says so.
   */
  public CompletableFuture<Outcome> call(
      String callId, ByteString argsJson, ByteString kwargsJson, Duration timeout) {
    return start(callId, timeout, ms -> channel.call(callId, argsJson, kwargsJson, ms));
  }

  /** {@link #call} with the call's one argument as raw bytes ({@code byte[]}, Python's bytes). */
  public CompletableFuture<Outcome> callRaw(String callId, ByteString raw, Duration timeout) {
    return start(callId, timeout, ms -> channel.callRaw(callId, raw, ms));
  }

  private CompletableFuture<Outcome> start(
      String callId,
      Duration timeout,
      java.util.function.LongFunction<CompletableFuture<Outcome>> send) {
    if (!alive()) {
      return CompletableFuture.completedFuture(new Outcome.Crashed("the container is not running"));
    }
    if (!running.add(callId)) {
      return CompletableFuture.completedFuture(
          new Outcome.Crashed("call " + callId + " is already running in this container"));
    }
    long timeoutMs = timeout == null ? 0 : timeout.toMillis();
    ScheduledFuture<?> backstop =
        timeoutMs == 0
            ? null
            : timers.schedule(
                () -> {
                  timedOut.add(callId);
                  killQuietly();
                },
                timeoutMs * (1 + (running.size() - 1) / slots) + BACKSTOP_GRACE_MS,
                TimeUnit.MILLISECONDS);
    CompletableFuture<Outcome> answer;
    try {
      answer = send.apply(timeoutMs);
    } catch (IllegalArgumentException e) {
      answer =
          CompletableFuture.completedFuture(
              new Outcome.HandlerError("InputTooLarge", e.getMessage(), ""));
    }
    return answer
        .handle(
            (o, t) -> {
              if (backstop != null) {
                backstop.cancel(false);
              }
              if (t == null) {
                if (o instanceof Outcome.OutOfMemory) {
                  outOfMemory = true; // the runner exits after saying so
                } else if (o instanceof Outcome.TimedOut) {
                  timedOut.add(callId);
                }
                return o;
              }
              if (timedOut.contains(callId)) {
                return new Outcome.TimedOut(timeoutMs);
              }
              Optional<ExitStatus> status = exitStatus();
              if (status.isPresent() && status.get().oomKilled()) {
                outOfMemory = true;
                return new Outcome.OutOfMemory();
              }
              return new Outcome.Crashed(
                  "the container ended mid-call ("
                      + status.map(ExitStatus::toString).orElse(t.getMessage())
                      + ")");
            })
        .whenComplete((o, t) -> running.remove(callId));
  }

  private Optional<ExitStatus> exitStatus() {
    try {
      return runner.waitFor(Duration.ofSeconds(5));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Optional.empty();
    }
  }

  private void killQuietly() {
    try {
      sandbox.kill();
    } catch (IOException | RuntimeException e) {
      LOG.warn("killing container {}: {}", sandbox.id(), e.toString());
    }
  }

  /**
   * How long a runner told to end (its stdin closed) may take to exit before its sandbox goes: the
   * time a Java function's {@code @Exit} methods get. An idle runner exits at once.
   */
  static final Duration EXIT_GRACE = Duration.ofSeconds(2);

  /** Ends the runner (waiting up to {@link #EXIT_GRACE}) and removes the container. Idempotent. */
  @Override
  public void close() throws IOException {
    boolean first = !closed;
    closed = true;
    try {
      channel.close();
      if (first && running.isEmpty()) {
        runner.waitFor(EXIT_GRACE);
      }
    } catch (IOException ignored) {
      // already gone
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    sandbox.close();
  }
}
