package dev.skiff.tracer;

import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.fs.ChunkAccessListener;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.pack.ChunkLocation;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.LongSupplier;

/**
 * Records the first access of each chunk with its time since the recorder started, as a {@link
 * ChunkAccessListener}. The hot path appends one small record to a lock-free queue; names of files
 * are looked up only when the recording is turned into a {@link Trace}. Thread safe.
 */
public final class TraceRecorder implements ChunkAccessListener {
  private record Access(long ino, ChunkLocation loc, long nanos, boolean ready) {}

  private final LongSupplier clock;
  private final long start;
  private final ConcurrentLinkedQueue<Access> accesses = new ConcurrentLinkedQueue<>();

  /**
   * @param clock nanosecond clock (injected so tests control time)
   */
  public TraceRecorder(LongSupplier clock) {
    this.clock = clock;
    this.start = clock.getAsLong();
  }

  public TraceRecorder() {
    this(System::nanoTime);
  }

  @Override
  public void firstAccess(long ino, int chunkIndex, ChunkLocation location, boolean ready) {
    accesses.add(new Access(ino, location, clock.getAsLong() - start, ready));
  }

  public int size() {
    return accesses.size();
  }

  /** The recording as a trace of one recording; file names come from {@code index}. */
  public Trace toTrace(ImageIndex index) {
    Set<Long> wanted = new HashSet<>();
    for (Access a : accesses) {
      wanted.add(a.ino());
    }
    Map<Long, String> names = pathsOf(index, wanted);
    List<Trace.Entry> entries = new ArrayList<>();
    Set<Object> seen = new HashSet<>();
    for (Access a : accesses) {
      if (seen.add(a.loc().digest())) {
        entries.add(
            new Trace.Entry(
                a.loc().digest(),
                a.nanos() / 1000,
                a.loc().plainLength(),
                1,
                a.ready() ? 1 : 0,
                names.getOrDefault(a.ino(), "inode " + a.ino())));
      }
    }
    DigestAlgorithm alg = index.algorithm();
    return new Trace(alg, 1, entries);
  }

  /** Paths of some inodes, by walking the directory tree once. */
  static Map<Long, String> pathsOf(ImageIndex index, Set<Long> inos) {
    Map<Long, String> out = new HashMap<>();
    List<Object[]> stack = new ArrayList<>();
    stack.add(new Object[] {ImageIndex.ROOT, ""});
    while (!stack.isEmpty() && out.size() < inos.size()) {
      Object[] top = stack.remove(stack.size() - 1);
      long dir = (Long) top[0];
      String prefix = (String) top[1];
      index.list(
          dir,
          0,
          (pos, name, ino) -> {
            String path = prefix + "/" + new String(name, java.nio.charset.StandardCharsets.UTF_8);
            if (inos.contains(ino)) {
              out.putIfAbsent(ino, path);
            }
            var n = index.inode(ino);
            if (n != null && n.isDirectory()) {
              stack.add(new Object[] {ino, path});
            }
            return true;
          });
    }
    return out;
  }
}
