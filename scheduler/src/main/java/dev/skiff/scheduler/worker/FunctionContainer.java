package dev.skiff.scheduler.worker;

import com.fasterxml.jackson.databind.JsonNode;
import dev.skiff.api.ImageSpec;
import dev.skiff.runtime.ExitStatus;
import dev.skiff.runtime.Sandbox;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxProcess;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.scheduler.runner.Outcome;
import dev.skiff.scheduler.runner.PythonRunner;
import dev.skiff.scheduler.runner.RunnerChannel;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One container of a function: a warm sandbox on the function's image with the runner and the
 * function's code bound in read-only, and the runner started in it, which imports the handler once
 * and then serves calls one after another over its {@link RunnerChannel}. What the handler prints
 * goes, line by line, to the {@link LogSink}.
 *
 * <p>A call that runs past its timeout kills the container ({@link Outcome.TimedOut}); a container
 * that dies mid-call gives {@link Outcome.OutOfMemory} when its memory limit killed it, else {@link
 * Outcome.Crashed}. A dead container serves no more calls ({@link #alive()}). One call at a time;
 * {@link #close} from any thread.
 */
public final class FunctionContainer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(FunctionContainer.class);

  /** Receives what a container's handler prints, line by line. */
  @FunctionalInterface
  public interface LogSink {
    LogSink NONE = (container, line) -> {};

    void line(String container, String line);
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
   * What to start: a Python handler ({@code module:function}) on an image, with its code directory
   * (null when the handler is in the image) and the sandbox's options (resources, env, user).
   */
  public record Spec(
      ImageSpec image, String python, String handler, Path codeDir, SandboxOptions options) {}

  private final Sandbox sandbox;
  private final SandboxProcess runner;
  private final RunnerChannel channel;
  private final ScheduledExecutorService timers;
  private volatile boolean timedOut;
  private volatile boolean dead;

  private FunctionContainer(
      Sandbox sandbox,
      SandboxProcess runner,
      RunnerChannel channel,
      ScheduledExecutorService timers) {
    this.sandbox = sandbox;
    this.runner = runner;
    this.channel = channel;
    this.timers = timers;
  }

  /**
   * Starts a container: the sandbox, the runner in it, and the handler's import.
   *
   * @throws ImportFailedException if the handler cannot be imported
   */
  public static FunctionContainer start(
      SandboxRuntime rt, Spec spec, Path runnerDir, ScheduledExecutorService timers, LogSink logs)
      throws IOException {
    SandboxOptions.Builder o = spec.options().toBuilder();
    PythonRunner.volumes(runnerDir, spec.codeDir()).forEach(o::volume);
    Sandbox sb = rt.create(spec.image(), o.build());
    try {
      SandboxProcess p =
          sb.exec(
              PythonRunner.command(spec.python(), spec.handler(), spec.codeDir() != null),
              Sandbox.Exec.defaults().withStdin(true));
      pumpLogs(sb.id(), p, logs);
      RunnerChannel channel = new RunnerChannel(p.stdin(), p.stdout());
      RunnerChannel.Ready ready;
      try {
        ready = channel.awaitReady();
      } catch (IOException e) {
        throw new IOException(
            "the runner did not start in "
                + spec.image()
                + " ("
                + p.waitFor(Duration.ofSeconds(5)).map(ExitStatus::toString).orElse("still running")
                + "): is "
                + spec.python()
                + " in the image?",
            e);
      }
      if (!ready.ok()) {
        throw new ImportFailedException(spec.handler(), ready.error());
      }
      return new FunctionContainer(sb, p, channel, timers);
    } catch (IOException | RuntimeException e) {
      sb.close();
      throw e;
    } catch (InterruptedException e) {
      sb.close();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while the runner started", e);
    }
  }

  private static void pumpLogs(String id, SandboxProcess p, LogSink logs) {
    Thread.ofPlatform()
        .daemon()
        .name("skiff-container-log")
        .start(
            () -> {
              try (BufferedReader r =
                  new BufferedReader(new InputStreamReader(p.stderr(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                  logs.line(id, line);
                }
              } catch (IOException e) {
                // the container went away
              }
            });
  }

  /** The container's id (its sandbox's). */
  public String id() {
    return sandbox.id();
  }

  public boolean alive() {
    return !dead && runner.isAlive();
  }

  /** Runs one call; a timeout of null or zero means none. */
  public Outcome call(JsonNode args, JsonNode kwargs, Duration timeout) {
    if (!alive()) {
      return new Outcome.Crashed("the container is not running");
    }
    ScheduledFuture<?> timer = null;
    if (timeout != null && !timeout.isZero()) {
      timer =
          timers.schedule(
              () -> {
                timedOut = true;
                killQuietly();
              },
              timeout.toMillis(),
              TimeUnit.MILLISECONDS);
    }
    try {
      return channel.call(args, kwargs);
    } catch (IOException e) {
      dead = true;
      if (timedOut) {
        return new Outcome.TimedOut(timeout.toMillis());
      }
      Optional<ExitStatus> status;
      try {
        status = runner.waitFor(Duration.ofSeconds(5));
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        status = Optional.empty();
      }
      if (status.isPresent() && status.get().oomKilled()) {
        return new Outcome.OutOfMemory();
      }
      return new Outcome.Crashed(
          "the container ended mid-call ("
              + status.map(ExitStatus::toString).orElse(e.getMessage())
              + ")");
    } finally {
      if (timer != null) {
        timer.cancel(false);
      }
    }
  }

  private void killQuietly() {
    try {
      sandbox.kill();
    } catch (IOException e) {
      LOG.warn("killing container {}: {}", sandbox.id(), e.toString());
    }
  }

  /** Ends the runner and removes the container. Idempotent. */
  @Override
  public void close() throws IOException {
    dead = true;
    try {
      channel.close();
    } catch (IOException ignored) {
      // already gone
    }
    sandbox.close();
  }
}
