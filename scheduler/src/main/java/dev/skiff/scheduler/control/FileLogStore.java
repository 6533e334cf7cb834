package dev.skiff.scheduler.control;

import dev.skiff.scheduler.proto.LogLine;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The log lines of each function on disk, so that they outlive the scheduler's memory and its
 * restarts: a file per function ({@code NAME.log}, the function id escaped), length-delimited
 * {@link LogLine}s appended as they come, and when it passes {@link #FILE_BYTES} it becomes {@code
 * NAME.log.1} (the one before is dropped), so a function keeps at most twice that. Writes are
 * buffered and flushed every second (and before a read): a crash loses at most the last second. At
 * most {@link #OPEN} files are open at once. Thread safe.
 */
final class FileLogStore implements LogStore {
  private static final Logger LOG = LoggerFactory.getLogger(FileLogStore.class);
  static final long FILE_BYTES = 8L << 20;
  static final int OPEN = 32;

  private final Path dir;
  private final long fileBytes;
  private final Map<String, Writer> open =
      new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Writer> eldest) {
          if (size() > OPEN) {
            eldest.getValue().close();
            return true;
          }
          return false;
        }
      };
  private boolean warned;

  private static final class Writer {
    final OutputStream out;
    long size;

    Writer(OutputStream out, long size) {
      this.out = out;
      this.size = size;
    }

    void close() {
      try {
        out.close();
      } catch (IOException e) {
        LOG.debug("closing a log file: {}", e.toString());
      }
    }
  }

  FileLogStore(Path dir) throws IOException {
    this(dir, FILE_BYTES);
  }

  /** With files turned over at {@code fileBytes} (tests). */
  FileLogStore(Path dir, long fileBytes) throws IOException {
    this.dir = Files.createDirectories(dir);
    this.fileBytes = fileBytes;
  }

  private Path file(String functionId) {
    return dir.resolve(URLEncoder.encode(functionId, StandardCharsets.UTF_8) + ".log");
  }

  private static Path older(Path file) {
    return file.resolveSibling(file.getFileName() + ".1");
  }

  /** Appends a line to its function's file; a disk that refuses it costs the line, said once. */
  @Override
  public synchronized void append(LogLine line) {
    if (line.getFunctionId().isEmpty()) {
      return;
    }
    try {
      Writer w = open.get(line.getFunctionId());
      Path f = file(line.getFunctionId());
      if (w == null) {
        w =
            new Writer(
                new BufferedOutputStream(
                    Files.newOutputStream(f, StandardOpenOption.CREATE, StandardOpenOption.APPEND),
                    1 << 16),
                Files.size(f));
        open.put(line.getFunctionId(), w);
      }
      if (w.size >= fileBytes) {
        w.close();
        Files.move(f, older(f), StandardCopyOption.REPLACE_EXISTING);
        w = new Writer(new BufferedOutputStream(Files.newOutputStream(f), 1 << 16), 0);
        open.put(line.getFunctionId(), w);
      }
      line.writeDelimitedTo(w.out);
      w.size += line.getSerializedSize() + 5L;
    } catch (IOException e) {
      if (!warned) {
        warned = true;
        LOG.warn("cannot keep log lines in {}: {} (said once)", dir, e.toString());
      }
    }
  }

  /** Writes what is buffered to the files. */
  @Override
  public synchronized void flush() {
    for (Writer w : open.values()) {
      try {
        w.out.flush();
      } catch (IOException e) {
        LOG.debug("flushing a log file: {}", e.toString());
      }
    }
  }

  /** The last {@code limit} lines of a function, or of one of its calls ({@code callId} set). */
  @Override
  public List<LogLine> read(String functionId, String callId, int limit) {
    Path f = file(functionId);
    synchronized (this) {
      Writer w = open.get(functionId);
      if (w != null) {
        try {
          w.out.flush();
        } catch (IOException e) {
          LOG.debug("flushing a log file: {}", e.toString());
        }
      }
    }
    Deque<LogLine> last = new ArrayDeque<>();
    for (Path p : List.of(older(f), f)) {
      if (!Files.exists(p)) {
        continue;
      }
      try (InputStream in = new BufferedInputStream(Files.newInputStream(p), 1 << 16)) {
        for (LogLine l; (l = LogLine.parseDelimitedFrom(in)) != null; ) {
          if (callId.isEmpty() || l.getCallId().equals(callId)) {
            last.addLast(l);
            if (last.size() > limit) {
              last.removeFirst();
            }
          }
        }
      } catch (IOException e) {
        // a line cut short by a crash ends the file's readable part
        LOG.debug("reading {}: {}", p, e.toString());
      }
    }
    return new ArrayList<>(last);
  }

  @Override
  public synchronized void close() {
    open.values().forEach(Writer::close);
    open.clear();
  }
}
