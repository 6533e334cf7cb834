package dev.skiff.runtime;

/**
 * How a sandbox's process ended.
 *
 * @param code the exit code as the process's parent saw it: the process's own, or 128+N when a
 *     signal N killed it (as a shell reports it; a process that calls {@code exit(137)} reads the
 *     same as one killed by SIGKILL)
 * @param signal the signal that killed it, inferred from {@code code}; 0 when it exited
 * @param timedOut killed because the sandbox's timeout ran out
 * @param oomKilled killed because the sandbox ran out of its memory limit
 */
public record ExitStatus(int code, int signal, boolean timedOut, boolean oomKilled) {
  /** The status of a process whose parent saw {@code code}. */
  public static ExitStatus of(int code, boolean timedOut, boolean oomKilled) {
    int signal = code > 128 && code <= 128 + 64 ? code - 128 : 0;
    return new ExitStatus(code, signal, timedOut, oomKilled);
  }

  public static ExitStatus exited(int code) {
    return of(code, false, false);
  }

  public boolean success() {
    return code == 0 && !timedOut && !oomKilled;
  }

  /**
   * The code to leave a command line with: the process's, or 124 after a timeout (as timeout(1)).
   */
  public int shellCode() {
    return timedOut ? 124 : code;
  }

  @Override
  public String toString() {
    if (timedOut) {
      return "timed out";
    }
    if (oomKilled) {
      return "killed for memory (exit " + code + ")";
    }
    return signal != 0 ? "killed by signal " + signal : "exit " + code;
  }
}
