package dev.skiff.scheduler.control;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.skiff.scheduler.proto.LogLine;
import dev.skiff.scheduler.state.PostgresConnection;
import java.io.IOException;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The log lines of each function in the PostgreSQL database that holds the scheduler's state, so
 * that a standby scheduler that takes over serves the lines its predecessor kept. Lines are
 * buffered in memory and written in one transaction per {@link #flush} (every second): a crash
 * loses at most the last second, as with files. Each function keeps its latest {@link #KEEP} lines;
 * older ones are deleted as new ones come. A database that cannot be reached costs the lines of
 * that time (at most {@link #PENDING} wait in memory), said once per outage. On a connection of its
 * own, so log traffic never waits for, or holds up, the state's writes.
 *
 * <pre>
 * skiff_logs (function_id, seq) -> call_id, line (protobuf LogLine)
 * </pre>
 */
final class PostgresLogStore implements LogStore {
  private static final Logger LOG = LoggerFactory.getLogger(PostgresLogStore.class);
  static final int KEEP = 50_000;
  static final int PENDING = 100_000;

  private static final String SCHEMA =
      """
      CREATE TABLE IF NOT EXISTS skiff_logs (
        function_id text NOT NULL, seq bigserial, call_id text NOT NULL, line bytea NOT NULL,
        PRIMARY KEY (function_id, seq));
      CREATE INDEX IF NOT EXISTS skiff_logs_call ON skiff_logs (function_id, call_id, seq);
      """;

  private final PostgresConnection db;
  private final int keep;
  private final Object pendingLock = new Object();
  private List<LogLine> pending = new ArrayList<>();
  private final Map<String, Integer> sinceTrim = new HashMap<>();
  private boolean failing;
  private long dropped;

  PostgresLogStore(String url) throws IOException {
    this(url, KEEP);
  }

  /** Keeping {@code keep} lines a function (tests). */
  PostgresLogStore(String url, int keep) throws IOException {
    this.db = new PostgresConnection(url);
    this.keep = keep;
    db.execute(SCHEMA);
  }

  @Override
  public void append(LogLine line) {
    if (line.getFunctionId().isEmpty()) {
      return;
    }
    synchronized (pendingLock) {
      if (pending.size() >= PENDING) {
        dropped++;
        return;
      }
      pending.add(line);
    }
  }

  /**
   * Writes what is buffered, on this store's own thread: the scheduler's timer that calls this
   * every second never waits for the database.
   */
  @Override
  public void flush() {
    if (flushing.compareAndSet(false, true)) {
      try {
        writer.execute(
            () -> {
              flushing.set(false);
              write();
            });
      } catch (java.util.concurrent.RejectedExecutionException closed) {
        flushing.set(false);
      }
    }
  }

  private final java.util.concurrent.ExecutorService writer =
      java.util.concurrent.Executors.newSingleThreadExecutor(
          r -> Thread.ofPlatform().daemon().name("skiff-log-writer").unstarted(r));
  private final java.util.concurrent.atomic.AtomicBoolean flushing =
      new java.util.concurrent.atomic.AtomicBoolean();

  /** Writes what is buffered, now, on the caller's thread. */
  private synchronized void write() {
    List<LogLine> lines;
    long lost;
    synchronized (pendingLock) {
      if (pending.isEmpty()) {
        return;
      }
      lines = pending;
      pending = new ArrayList<>();
      lost = dropped;
      dropped = 0;
    }
    Map<String, Integer> written = new HashMap<>();
    for (LogLine l : lines) {
      written.merge(l.getFunctionId(), 1, Integer::sum);
    }
    try {
      db.inTransaction(
          c -> {
            try (PreparedStatement ins =
                c.prepareStatement(
                    "INSERT INTO skiff_logs (function_id, call_id, line) VALUES (?, ?, ?)")) {
              for (LogLine l : lines) {
                ins.setString(1, l.getFunctionId());
                ins.setString(2, l.getCallId());
                ins.setBytes(3, l.toByteArray());
                ins.addBatch();
              }
              ins.executeBatch();
            }
            // A function's old lines go once it has written a tenth of what it keeps since.
            try (PreparedStatement trim =
                c.prepareStatement(
                    "DELETE FROM skiff_logs WHERE function_id = ? AND seq <= (SELECT seq FROM"
                        + " skiff_logs WHERE function_id = ? ORDER BY seq DESC OFFSET ? LIMIT 1)")) {
              for (Map.Entry<String, Integer> e : written.entrySet()) {
                int since = sinceTrim.getOrDefault(e.getKey(), 0) + e.getValue();
                if (since < Math.max(1, keep / 10)) {
                  sinceTrim.put(e.getKey(), since);
                  continue;
                }
                sinceTrim.remove(e.getKey());
                trim.setString(1, e.getKey());
                trim.setString(2, e.getKey());
                trim.setInt(3, keep);
                trim.executeUpdate();
              }
            }
            return null;
          });
      if (failing) {
        failing = false;
        LOG.info("log lines are kept in the database again");
      }
      if (lost > 0) {
        LOG.warn("{} log lines were dropped while the database did not take them", lost);
      }
    } catch (IOException e) {
      if (!failing) {
        failing = true;
        LOG.warn(
            "cannot keep log lines in the database: {} ({} lines lost; said once until it works)",
            e.getMessage(),
            lines.size());
      }
    }
  }

  @Override
  public List<LogLine> read(String functionId, String callId, int limit) {
    write();
    try {
      return db.inTransaction(
          c -> {
            List<LogLine> out = new ArrayList<>();
            try (PreparedStatement q =
                c.prepareStatement(
                    callId.isEmpty()
                        ? "SELECT line FROM skiff_logs WHERE function_id = ?"
                            + " ORDER BY seq DESC LIMIT ?"
                        : "SELECT line FROM skiff_logs WHERE function_id = ? AND call_id = ?"
                            + " ORDER BY seq DESC LIMIT ?")) {
              int i = 1;
              q.setString(i++, functionId);
              if (!callId.isEmpty()) {
                q.setString(i++, callId);
              }
              q.setInt(i, limit);
              try (ResultSet rs = q.executeQuery()) {
                while (rs.next()) {
                  out.add(parse(rs.getBytes(1)));
                }
              }
            }
            Collections.reverse(out);
            return out;
          });
    } catch (IOException e) {
      LOG.warn("cannot read log lines from the database: {}", e.getMessage());
      return List.of();
    }
  }

  private static LogLine parse(byte[] b) throws IOException {
    try {
      return LogLine.parseFrom(b);
    } catch (InvalidProtocolBufferException e) {
      throw new IOException("a damaged log line: " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    writer.shutdown();
    try {
      writer.awaitTermination(30, java.util.concurrent.TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    write();
    db.close();
  }
}
