package dev.skiff.scheduler.control;

import dev.skiff.scheduler.proto.LogLine;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * What containers print, as the workers send it: kept in a {@link LogStore} on disk where the
 * scheduler has one (the latest {@link #PER_FUNCTION} lines of a function, {@link #PER_CALL} of a
 * call, are what a request gets), else in memory, bounded (those of each function, and of each of
 * the latest {@link #CALLS} calls); and handed to whoever follows a function or a call as it
 * arrives. Thread safe.
 */
final class LogHub {
  static final int PER_FUNCTION = 5000;
  static final int PER_CALL = 2000;
  static final int CALLS = 20_000;

  /** A follower: lines of one function, or of one call. */
  interface Subscription extends AutoCloseable {
    @Override
    void close();
  }

  private record Follower(String functionId, String callId, Consumer<LogLine> to) {
    boolean wants(LogLine l) {
      return callId.isEmpty() ? l.getFunctionId().equals(functionId) : l.getCallId().equals(callId);
    }
  }

  private final Map<String, Deque<LogLine>> byFunction = new LinkedHashMap<>();
  private final Map<String, Deque<LogLine>> byCall =
      new LinkedHashMap<>(1024, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Deque<LogLine>> eldest) {
          return size() > CALLS;
        }
      };
  private final List<Follower> followers = new CopyOnWriteArrayList<>();
  private LogStore store;

  /** Keeps lines in {@code s} from now on instead of memory. */
  synchronized void store(LogStore s) {
    this.store = s;
    byFunction.clear();
    byCall.clear();
  }

  synchronized void add(LogLine line) {
    if (store != null) {
      store.append(line);
    } else {
      remember(line);
    }
    for (Follower f : followers) {
      if (f.wants(line)) {
        f.to().accept(line);
      }
    }
  }

  /** Writes buffered lines to disk. */
  void flush() {
    LogStore s;
    synchronized (this) {
      s = store;
    }
    if (s != null) {
      s.flush();
    }
  }

  private void remember(LogLine line) {
    keep(
        byFunction.computeIfAbsent(line.getFunctionId(), k -> new ArrayDeque<>()),
        line,
        PER_FUNCTION);
    if (!line.getCallId().isEmpty()) {
      keep(byCall.computeIfAbsent(line.getCallId(), k -> new ArrayDeque<>()), line, PER_CALL);
    }
  }

  private static void keep(Deque<LogLine> lines, LogLine line, int max) {
    lines.addLast(line);
    if (lines.size() > max) {
      lines.removeFirst();
    }
  }

  /**
   * The lines kept of a function ({@code callId} empty) or of one of its calls. From disk it reads
   * without holding this hub's lock, so new lines (a worker's messages) do not wait for it.
   */
  List<LogLine> backlog(String functionId, String callId) {
    LogStore s;
    synchronized (this) {
      s = store;
      if (s == null) {
        Deque<LogLine> lines = callId.isEmpty() ? byFunction.get(functionId) : byCall.get(callId);
        return lines == null ? List.of() : new ArrayList<>(lines);
      }
    }
    return s.read(functionId, callId, callId.isEmpty() ? PER_FUNCTION : PER_CALL);
  }

  /**
   * Hands {@code to} the backlog, then every new line, with none lost or repeated between the two,
   * until the subscription is closed. (New lines wait while a backlog on disk is read.)
   */
  Subscription follow(String functionId, String callId, Consumer<LogLine> to) {
    Follower f = new Follower(functionId, callId, to);
    synchronized (this) {
      backlog(functionId, callId).forEach(to);
      followers.add(f);
    }
    return () -> followers.remove(f);
  }
}
