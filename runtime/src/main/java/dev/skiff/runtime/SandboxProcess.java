package dev.skiff.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Duration;
import java.util.Optional;

/**
 * A process in a sandbox: the sandbox's first process or one started in it later. Its stdout and
 * stderr are separate streams, read in order; stdin is a stream when asked for, else empty.
 */
public interface SandboxProcess {
  /**
   * The process's standard input; only when it was asked for ({@link IllegalStateException} else).
   */
  OutputStream stdin();

  InputStream stdout();

  InputStream stderr();

  boolean isAlive();

  /** Waits for the end and says how it ended. */
  ExitStatus waitFor() throws InterruptedException;

  /** How it ended, or empty if it still runs after {@code timeout}. */
  Optional<ExitStatus> waitFor(Duration timeout) throws InterruptedException;

  /**
   * Copies stdout and stderr to {@code out} and {@code err} as they arrive (flushing after each
   * read, so a terminal sees output at once), on two threads; returns them to join.
   */
  default Thread[] pipeTo(OutputStream out, OutputStream err) {
    return new Thread[] {Pipes.pump(stdout(), out, this + " stdout", this), pipeStderrTo(err)};
  }

  /** Copies stderr only (the caller reads stdout itself); returns the thread. */
  default Thread pipeStderrTo(OutputStream err) {
    return Pipes.pump(stderr(), err, this + " stderr", this);
  }

  /**
   * Copies {@code in} to the process's stdin as it arrives, on a thread, and closes stdin at the
   * end of {@code in} (so the process reads end-of-file); returns the thread.
   */
  default Thread pipeStdinFrom(InputStream in) {
    OutputStream to = stdin();
    return Thread.ofPlatform()
        .daemon()
        .name("skiff-stdin")
        .start(
            () -> {
              try (to) {
                Pipes.copy(in, to);
              } catch (IOException e) {
                // the process exited or stopped reading: what is left of in has no reader
              }
            });
  }
}
