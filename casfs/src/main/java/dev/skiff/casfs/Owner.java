package dev.skiff.casfs;

import java.time.Instant;
import java.util.Optional;

/**
 * A process that owns something left on disk (scratch files, a sandbox, a mount), named so that a
 * later start can tell whether it still runs: its pid and its start time (a reused pid does not
 * match).
 *
 * @param start the start time as the OS reports it, or "" where it does not
 */
public record Owner(long pid, String start) {
  public static Owner current() {
    return of(ProcessHandle.current());
  }

  private static Owner of(ProcessHandle h) {
    return new Owner(h.pid(), h.info().startInstant().map(Instant::toString).orElse(""));
  }

  public boolean alive() {
    return ProcessHandle.of(pid)
        .filter(ProcessHandle::isAlive)
        .map(h -> of(h).equals(this))
        .orElse(false);
  }

  /** A file-name-safe form, {@code PID-STARTDIGITS}. */
  public String tag() {
    return pid + "-" + start.replaceAll("[^0-9]", "");
  }

  /** Whether the owner a {@link #tag()} names still runs. */
  public static boolean aliveByTag(String tag) {
    int dash = tag.indexOf('-');
    if (dash <= 0 || !tag.substring(0, dash).matches("\\d+")) {
      return false;
    }
    Optional<ProcessHandle> h = ProcessHandle.of(Long.parseLong(tag.substring(0, dash)));
    return h.filter(ProcessHandle::isAlive).map(p -> of(p).tag().equals(tag)).orElse(false);
  }
}
