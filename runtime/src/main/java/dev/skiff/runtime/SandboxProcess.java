package dev.skiff.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Duration;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;

/**
 * A process in a sandbox: the sandbox's first process ({@code runsc run} or {@code restore}) or one
 * started in it later ({@code runsc exec}). Its stdout and stderr are pipes, read separately and in
 * order; stdin is a pipe when asked for, else /dev/null.
 *
 * <p>Exit codes are the process's own; a process killed by signal N exits 128+N, as in a shell.
 */
public final class SandboxProcess {
  private static final org.slf4j.Logger log =
      org.slf4j.LoggerFactory.getLogger(SandboxProcess.class);
  private final Process process;
  private final boolean stdin;
  private final String what;

  SandboxProcess(Process process, boolean stdin, String what) {
    this.process = process;
    this.stdin = stdin;
    this.what = what;
  }

  /** The process's standard input; only when it was asked for. */
  public OutputStream stdin() {
    if (!stdin) {
      throw new IllegalStateException(what + " was started without stdin");
    }
    return process.getOutputStream();
  }

  public InputStream stdout() {
    return process.getInputStream();
  }

  public InputStream stderr() {
    return process.getErrorStream();
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /** Waits for the exit and returns the exit code. */
  public int waitFor() throws InterruptedException {
    return process.waitFor();
  }

  /** The exit code, or empty if the process is still running after {@code timeout}. */
  public OptionalInt waitFor(Duration timeout) throws InterruptedException {
    return process.waitFor(timeout.toNanos(), TimeUnit.NANOSECONDS)
        ? OptionalInt.of(process.exitValue())
        : OptionalInt.empty();
  }

  /**
   * Copies stdout and stderr to {@code out} and {@code err} as they arrive (flushing after each
   * read, so a terminal sees output at once), on two threads; returns them to join.
   */
  public Thread[] pipeTo(OutputStream out, OutputStream err) {
    return new Thread[] {pump(stdout(), out, "stdout"), pipeStderrTo(err)};
  }

  /** Copies stderr only (the caller reads stdout itself); returns the thread. */
  public Thread pipeStderrTo(OutputStream err) {
    return pump(stderr(), err, "stderr");
  }

  /**
   * Copies {@code in} to the process's stdin as it arrives, on a thread, and closes stdin at the
   * end of {@code in} (so the process reads end-of-file); returns the thread.
   */
  public Thread pipeStdinFrom(InputStream in) {
    OutputStream to = stdin();
    return Thread.ofPlatform()
        .daemon()
        .name("skiff-stdin")
        .start(
            () -> {
              try (to) {
                copy(in, to);
              } catch (IOException e) {
                // the process exited or stopped reading: what is left of in has no reader
              }
            });
  }

  private Thread pump(InputStream in, OutputStream to, String name) {
    return Thread.ofPlatform()
        .daemon()
        .name("skiff-" + name)
        .start(
            () -> {
              try {
                copy(in, to);
              } catch (IOException e) {
                if (process
                    .isAlive()) { // the reader went away (a closed terminal, say): say so once
                  log.warn("{}: copying {} stopped: {}", what, name, e.toString());
                }
              }
            });
  }

  /**
   * Copies to the end of {@code in}, flushing after each read so that nothing waits in a buffer.
   */
  private static void copy(InputStream in, OutputStream to) throws IOException {
    byte[] buf = new byte[64 << 10];
    for (int n; (n = in.read(buf)) >= 0; ) {
      to.write(buf, 0, n);
      to.flush();
    }
  }

  /** The process itself (runsc's), for tests and for the runtime. */
  Process process() {
    return process;
  }

  @Override
  public String toString() {
    return what;
  }
}
