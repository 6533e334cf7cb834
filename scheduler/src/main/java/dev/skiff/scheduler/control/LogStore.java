package dev.skiff.scheduler.control;

import dev.skiff.scheduler.proto.LogLine;
import java.util.List;

/**
 * Where a scheduler keeps its functions' log lines beyond its memory: files in its data directory
 * ({@link FileLogStore}), or the PostgreSQL database of its state ({@link PostgresLogStore}), where
 * a standby that takes over finds them. Thread safe.
 */
interface LogStore {
  /** Takes a line, perhaps only into a buffer until the next {@link #flush}. */
  void append(LogLine line);

  /** Writes what is buffered; a store that refuses it costs the lines, said once. */
  void flush();

  /** The last {@code limit} lines of a function, or of one of its calls ({@code callId} set). */
  List<LogLine> read(String functionId, String callId, int limit);

  void close();
}
