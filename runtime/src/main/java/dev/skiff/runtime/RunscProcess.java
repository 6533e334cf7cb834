package dev.skiff.runtime;

import java.io.InputStream;
import java.io.OutputStream;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * A sandbox process as the runsc command that runs it ({@code run}, {@code restore}, {@code exec}):
 * runsc passes the process's streams through and exits with its status (128+N for signal N).
 */
final class RunscProcess implements SandboxProcess {
  /** What the sandbox knows of why its processes ended. */
  interface Fate {
    boolean timedOut();

    boolean oomKilled();
  }

  private final Process process;
  private final boolean stdin;
  private final String what;
  private final Fate fate;

  RunscProcess(Process process, boolean stdin, String what, Fate fate) {
    this.process = process;
    this.stdin = stdin;
    this.what = what;
    this.fate = fate;
  }

  @Override
  public OutputStream stdin() {
    if (!stdin) {
      throw new IllegalStateException(what + " was started without stdin");
    }
    return process.getOutputStream();
  }

  @Override
  public InputStream stdout() {
    return process.getInputStream();
  }

  @Override
  public InputStream stderr() {
    return process.getErrorStream();
  }

  @Override
  public boolean isAlive() {
    return process.isAlive();
  }

  @Override
  public ExitStatus waitFor() throws InterruptedException {
    return status(process.waitFor());
  }

  @Override
  public Optional<ExitStatus> waitFor(Duration timeout) throws InterruptedException {
    return process.waitFor(timeout.toNanos(), TimeUnit.NANOSECONDS)
        ? Optional.of(status(process.exitValue()))
        : Optional.empty();
  }

  private ExitStatus status(int code) {
    return ExitStatus.of(code, fate.timedOut(), fate.oomKilled());
  }

  /** The runsc process itself. */
  Process process() {
    return process;
  }

  @Override
  public String toString() {
    return what;
  }
}
