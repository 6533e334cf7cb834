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
 * What containers print, as the workers send it: kept in memory, bounded (the latest {@link
 * #PER_FUNCTION} lines of each function, {@link #PER_CALL} of each of the latest {@link #CALLS}
 * calls), and handed to whoever follows a function or a call as it arrives. Thread safe.
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

  synchronized void add(LogLine line) {
    keep(
        byFunction.computeIfAbsent(line.getFunctionId(), k -> new ArrayDeque<>()),
        line,
        PER_FUNCTION);
    if (!line.getCallId().isEmpty()) {
      keep(byCall.computeIfAbsent(line.getCallId(), k -> new ArrayDeque<>()), line, PER_CALL);
    }
    for (Follower f : followers) {
      if (f.wants(line)) {
        f.to().accept(line);
      }
    }
  }

  private static void keep(Deque<LogLine> lines, LogLine line, int max) {
    lines.addLast(line);
    if (lines.size() > max) {
      lines.removeFirst();
    }
  }

  /** The lines kept of a function ({@code callId} empty) or of a call. */
  synchronized List<LogLine> backlog(String functionId, String callId) {
    Deque<LogLine> lines = callId.isEmpty() ? byFunction.get(functionId) : byCall.get(callId);
    return lines == null ? List.of() : new ArrayList<>(lines);
  }

  /**
   * Hands {@code to} the backlog, then every new line, with none lost or repeated between the two,
   * until the subscription is closed.
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
