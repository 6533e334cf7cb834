package dev.skiff.casfs.cache;

import dev.skiff.casfs.digest.Digest;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Plain chunk bytes as files named by digest, bounded in bytes, least recently used evicted first.
 * Files are written to a temporary name and renamed, and checked against their digest when read
 * back (a bad file is deleted and reported as a miss). Survives restarts: the recency order is
 * rebuilt from modification times. Thread safe.
 */
public final class DiskChunkCache {
  private static final Logger LOG = LoggerFactory.getLogger(DiskChunkCache.class);

  private final Path dir;
  private final long maxBytes;
  private final LinkedHashMap<String, Long> lru = new LinkedHashMap<>(1024, 0.75f, true);
  private long bytes;
  private long evictions;

  public DiskChunkCache(Path dir, long maxBytes) throws IOException {
    this.dir = dir;
    this.maxBytes = maxBytes;
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

  /** The chunk's verified bytes, or null on a miss. */
  public byte[] get(Digest d) throws IOException {
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
    }
    if (!d.algorithm().digest(data).equals(d)) {
      LOG.warn("disk cache file {} does not match its digest; deleted", p);
      Files.deleteIfExists(p);
      forget(n);
      return null;
    }
    try {
      Files.setLastModifiedTime(p, FileTime.fromMillis(System.currentTimeMillis()));
    } catch (IOException ignored) {
      // recency on disk is a hint for the next start only
    }
    return data;
  }

  /** Stores a verified chunk. */
  public void put(Digest d, byte[] data) throws IOException {
    String n = name(d);
    synchronized (this) {
      if (lru.containsKey(n)) {
        return;
      }
    }
    Path tmp = dir.resolve(".tmp-" + UUID.randomUUID());
    try {
      Files.write(tmp, data);
      Files.move(tmp, dir.resolve(n), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
    synchronized (this) {
      Long prev = lru.put(n, (long) data.length);
      bytes += data.length - (prev == null ? 0 : prev);
      evict();
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
}
