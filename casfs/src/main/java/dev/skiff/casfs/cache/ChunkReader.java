package dev.skiff.casfs.cache;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.pack.ChunkLocation;
import dev.skiff.casfs.store.BlobStore;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves a chunk's plain bytes: from memory (Caffeine, bounded in bytes), else from the disk cache
 * if there is one, else from the blob store. One fetch per chunk however many threads ask (the
 * first asker fetches on its own thread, the rest wait for it); a failed fetch is not remembered,
 * so the next read tries again. Every byte from the store or disk is checked against the chunk's
 * digest before anyone sees it.
 *
 * <p>Thread safe. {@link #prefetch} is the entry point for read-ahead and trace replay.
 */
public final class ChunkReader {
  private static final Logger LOG = LoggerFactory.getLogger(ChunkReader.class);

  private final BlobStore store;
  private final DiskChunkCache disk;
  private final Cache<Digest, byte[]> memory;
  private final Executor prefetchExecutor;
  private final ConcurrentHashMap<Digest, CompletableFuture<byte[]>> inflight = new ConcurrentHashMap<>();
  private final LongAdder requests = new LongAdder();
  private final LongAdder memoryHits = new LongAdder();
  private final LongAdder diskHits = new LongAdder();
  private final LongAdder storeFetches = new LongAdder();
  private final LongAdder storeBytes = new LongAdder();
  private final LongAdder corrupt = new LongAdder();

  /**
   * @param disk the disk tier, or null for none (a local store is its own disk tier)
   * @param prefetchExecutor runs {@link #prefetch} work
   */
  public ChunkReader(BlobStore store, long memoryBytes, DiskChunkCache disk, Executor prefetchExecutor) {
    this.store = store;
    this.disk = disk;
    this.prefetchExecutor = prefetchExecutor;
    this.memory = Caffeine.newBuilder()
        .maximumWeight(memoryBytes)
        .weigher((Digest d, byte[] b) -> b.length + 64)
        .executor(Runnable::run)
        .build();
  }

  /** The chunk's plain, verified bytes. Callers must not modify the array. */
  public byte[] get(ChunkLocation loc) throws IOException {
    requests.increment();
    Digest d = loc.digest();
    byte[] v = memory.getIfPresent(d);
    if (v != null) {
      memoryHits.increment();
      return v;
    }
    CompletableFuture<byte[]> mine = new CompletableFuture<>();
    CompletableFuture<byte[]> theirs = inflight.putIfAbsent(d, mine);
    if (theirs != null) {
      return await(theirs, loc);
    }
    try {
      v = memory.getIfPresent(d);
      if (v == null) {
        v = load(loc);
        memory.put(d, v);
      } else {
        memoryHits.increment();
      }
      mine.complete(v);
      return v;
    } catch (IOException | RuntimeException | Error e) {
      mine.completeExceptionally(e);
      throw e;
    } finally {
      inflight.remove(d, mine);
    }
  }

  private static byte[] await(CompletableFuture<byte[]> f, ChunkLocation loc) throws IOException {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted waiting for chunk " + loc.digest());
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof IOException io) {
        throw io;
      }
      throw new IOException("fetch of chunk " + loc.digest() + " failed", c);
    }
  }

  private byte[] load(ChunkLocation loc) throws IOException {
    if (disk != null) {
      byte[] v = disk.get(loc.digest());
      if (v != null) {
        diskHits.increment();
        return v;
      }
    }
    ByteBuffer stored = store.readFully(loc.pack(), loc.offset(), loc.storedLength());
    storeFetches.increment();
    storeBytes.add(loc.storedLength());
    byte[] plain;
    try {
      plain = loc.codec().decode(stored.array(), loc.plainLength());
    } catch (IOException e) {
      corrupt.increment();
      LOG.error("chunk {} in {} at {} does not decode: {}", loc.digest(), loc.pack(), loc.offset(), e.getMessage());
      throw new CorruptChunkException("chunk " + loc.digest() + " does not decode: " + e.getMessage());
    }
    Digest got = loc.digest().algorithm().digest(plain);
    if (!got.equals(loc.digest())) {
      corrupt.increment();
      LOG.error("chunk {} in {} at {} is corrupt: content digest is {}", loc.digest(), loc.pack(), loc.offset(), got);
      throw new CorruptChunkException("chunk " + loc.digest() + " is corrupt (content digest " + got + ")");
    }
    if (disk != null) {
      disk.put(loc.digest(), plain);
    }
    return plain;
  }

  /** Fetches a chunk into memory in the background unless it is there or on its way. */
  public void prefetch(ChunkLocation loc) {
    if (memory.getIfPresent(loc.digest()) != null || inflight.containsKey(loc.digest())) {
      return;
    }
    prefetchExecutor.execute(() -> {
      try {
        get(loc);
      } catch (IOException | UncheckedIOException e) {
        LOG.debug("prefetch of {} failed: {}", loc.digest(), e.toString());
      }
    });
  }

  /** Counters for people and tests. */
  public record Stats(long requests, long memoryHits, long diskHits, long storeFetches, long storeBytes, long corrupt,
      long memoryEntries) {}

  public Stats stats() {
    return new Stats(requests.sum(), memoryHits.sum(), diskHits.sum(), storeFetches.sum(), storeBytes.sum(),
        corrupt.sum(), memory.estimatedSize());
  }

  /** Drops every chunk held in memory (tests, and the "cold2" benchmark phase). */
  public void invalidateMemory() {
    memory.invalidateAll();
  }
}
