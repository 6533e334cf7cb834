package dev.skiff.casfs.cache;

import dev.skiff.casfs.digest.Digest;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Plain chunk bytes as files named by digest, bounded in bytes, least recently used evicted first.
 * Files are written to a temporary name and renamed, and checked against their digest when read
 * back (a bad file is deleted and reported as a miss). Survives restarts: the recency order is
 * rebuilt from modification times. Thread safe.
 *
 * <p>The cache only ever saves fetches: a file that cannot be read is a miss, and a chunk that
 * cannot be written (a full or failing disk) is simply not cached. Write failures are logged once
 * per outage; writes then pause for {@link #FIRST_PAUSE}, doubling on each further failure up to
 * {@link #MAX_PAUSE}, and the first write that works ends the outage. Time comes from an injected
 * clock ({@link System#nanoTime} in production).
 */
public final class DiskChunkCache {
  private static final Logger LOG = LoggerFactory.getLogger(DiskChunkCache.class);

  /** How long writes pause after the first one that failed. */
  static final Duration FIRST_PAUSE = Duration.ofSeconds(10);

  /** The longest pause between write attempts while writes keep failing. */
  static final Duration MAX_PAUSE = Duration.ofMinutes(10);

  private final Path dir;
  private final long maxBytes;
  private final LongSupplier clock;
  private final LinkedHashMap<String, Long> lru = new LinkedHashMap<>(1024, 0.75f, true);
  private long bytes;
  private long evictions;
  // Write failures, guarded by this: the pause in force (0: writes work) and when it ends.
  private long pauseNanos;
  private long writesResumeAt;
  private long failedWrites;
  private long skippedWrites;
  private long failedReads;

  public DiskChunkCache(Path dir, long maxBytes) throws IOException {
    this(dir, maxBytes, System::nanoTime);
  }

  /**
   * As above, with the clock ({@link System#nanoTime} elsewhere) that times pauses after failed
   * writes.
   */
  public DiskChunkCache(Path dir, long maxBytes, LongSupplier nanoClock) throws IOException {
    this.dir = dir;
    this.maxBytes = maxBytes;
    this.clock = nanoClock;
    Files.createDirectories(dir);
    List<Object[]> found = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
      for (Path p : ds) {
        String n = p.getFileName().toString();
        if (n.startsWith(".tmp-")) {
          Files.deleteIfExists(p);
          continue;
        }
        found.add(new Object[] {n, Files.size(p), Files.getLastModifiedTime(p)});
      }
    }
    found.sort((a, b) -> ((FileTime) a[2]).compareTo((FileTime) b[2]));
    synchronized (this) {
      for (Object[] f : found) {
        lru.put((String) f[0], (Long) f[1]);
        bytes += (Long) f[1];
      }
      evict();
    }
  }

  private static String name(Digest d) {
    return d.algorithm().label() + "-" + d.hex();
  }

  /** The chunk's verified bytes, or null on a miss; a file that cannot be read is a miss. */
  public byte[] get(Digest d) {
    String n = name(d);
    synchronized (this) {
      if (lru.get(n) == null) {
        return null;
      }
    }
    byte[] data;
    Path p = dir.resolve(n);
    try {
      data = Files.readAllBytes(p);
    } catch (NoSuchFileException e) {
      forget(n);
      return null;
    } catch (IOException e) {
      long failures;
      synchronized (this) {
        failures = ++failedReads;
      }
      if (failures == 1) {
        LOG.warn(
            "cannot read disk cache file {} ({}); it and any others that fail count as misses",
            p,
            e.toString());
      } else {
        LOG.debug("cannot read disk cache file {}: {}", p, e.toString());
      }
      discard(p, n);
      return null;
    }
    if (!d.algorithm().digest(data).equals(d)) {
      LOG.warn("disk cache file {} does not match its digest; deleted", p);
      discard(p, n);
      return null;
    }
    try {
      Files.setLastModifiedTime(p, FileTime.fromMillis(System.currentTimeMillis()));
    } catch (IOException ignored) {
      // recency on disk is a hint for the next start only
    }
    return data;
  }

  /** Forgets a bad file and removes it if it can. */
  private void discard(Path p, String n) {
    forget(n);
    try {
      Files.deleteIfExists(p);
    } catch (IOException e) {
      LOG.debug("cannot delete disk cache file {}: {}", p, e.toString());
    }
  }

  /**
   * Stores a verified chunk if it can, and says whether the chunk is now on disk. A failed write is
   * not an error for the caller: it is logged (once per outage) and writes pause for a while.
   */
  public boolean put(Digest d, byte[] data) {
    String n = name(d);
    synchronized (this) {
      if (lru.containsKey(n)) {
        return true;
      }
      if (pauseNanos > 0 && clock.getAsLong() - writesResumeAt < 0) {
        skippedWrites++;
        return false;
      }
    }
    Path tmp = dir.resolve(".tmp-" + UUID.randomUUID());
    try {
      Files.write(tmp, data);
      Files.move(
          tmp, dir.resolve(n), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      try {
        Files.deleteIfExists(tmp);
      } catch (IOException ignored) {
        // a leftover temporary file is removed at the next start
      }
      writeFailed(e);
      return false;
    }
    synchronized (this) {
      if (pauseNanos > 0) {
        pauseNanos = 0;
        LOG.info("disk cache {} stores chunks again", dir);
      }
      Long prev = lru.put(n, (long) data.length);
      bytes += data.length - (prev == null ? 0 : prev);
      evict();
    }
    return true;
  }

  private synchronized void writeFailed(IOException e) {
    failedWrites++;
    boolean first = pauseNanos == 0;
    pauseNanos = first ? FIRST_PAUSE.toNanos() : Math.min(2 * pauseNanos, MAX_PAUSE.toNanos());
    writesResumeAt = clock.getAsLong() + pauseNanos;
    if (first) {
      LOG.warn(
          "disk cache {} cannot store chunks ({}); chunks are served without it, and writes are tried again"
              + " after a pause that grows while they fail",
          dir,
          e.toString());
    } else {
      LOG.debug(
          "disk cache {} still cannot store chunks ({}); next try in {} s",
          dir,
          e.toString(),
          pauseNanos / 1_000_000_000L);
    }
  }

  private synchronized void forget(String n) {
    Long size = lru.remove(n);
    if (size != null) {
      bytes -= size;
    }
  }

  private void evict() {
    Iterator<Map.Entry<String, Long>> it = lru.entrySet().iterator();
    while (bytes > maxBytes && it.hasNext()) {
      Map.Entry<String, Long> e = it.next();
      try {
        Files.deleteIfExists(dir.resolve(e.getKey()));
      } catch (IOException ex) {
        LOG.warn("cannot evict {} from the disk cache: {}", e.getKey(), ex.toString());
        continue;
      }
      bytes -= e.getValue();
      evictions++;
      it.remove();
    }
  }

  public synchronized long bytes() {
    return bytes;
  }

  public synchronized long entries() {
    return lru.size();
  }

  public synchronized long evictions() {
    return evictions;
  }

  /** Writes that failed (each outage is logged once, at its first). */
  public synchronized long failedWrites() {
    return failedWrites;
  }

  /** Chunks not written because writes were paused after a failure. */
  public synchronized long skippedWrites() {
    return skippedWrites;
  }

  /** Cache files that could not be read (each served from the store instead). */
  public synchronized long failedReads() {
    return failedReads;
  }
}
