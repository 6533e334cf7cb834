package dev.skiff.casfs.cache;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.pack.ChunkLocation;
import dev.skiff.casfs.pack.PackWriter;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.StoreUnavailableException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves a chunk's plain bytes: from memory (Caffeine, bounded in bytes), else from the disk cache
 * if there is one, else from the blob store. One fetch per chunk however many threads ask (the
 * first asker fetches on its own thread, the rest wait for it); a failed fetch is not remembered,
 * so the next read tries again. Every byte from the store or disk is checked against the chunk's
 * digest before anyone sees it.
 *
 * <p>A pack's chunk list (which neighbours a window may take along) is fetched once; a failure to
 * fetch it is remembered for {@link #LIST_RETRY}, and reads of that pack fetch single chunks
 * meanwhile, so that a store that fails or hangs on lists costs no extra call per read. A store
 * that is down fails the read at once, with no second call.
 *
 * <p>Thread safe. {@link #prefetch} is the entry point for read-ahead and trace replay.
 */
public final class ChunkReader {
  private static final Logger LOG = LoggerFactory.getLogger(ChunkReader.class);

  /** How long a pack whose chunk list could not be fetched is read a chunk at a time. */
  static final Duration LIST_RETRY = Duration.ofSeconds(30);

  private final BlobStore store;
  private final DiskChunkCache disk;
  private final Cache<Digest, byte[]> memory;
  private final Executor prefetchExecutor;
  private final ConcurrentHashMap<Digest, CompletableFuture<byte[]>> inflight =
      new ConcurrentHashMap<>();
  private final LongAdder requests = new LongAdder();
  private final LongAdder memoryHits = new LongAdder();
  private final LongAdder diskHits = new LongAdder();
  private final LongAdder storeFetches = new LongAdder();
  private final LongAdder storeBytes = new LongAdder();
  private final LongAdder corrupt = new LongAdder();
  private final LongAdder windowChunks = new LongAdder();
  private final int windowBytes;
  private final ConcurrentHashMap<String, CompletableFuture<List<ChunkLocation>>> packIndexes =
      new ConcurrentHashMap<>();

  /** Packs whose chunk list failed to come, and when ({@link #clock}) to try again. */
  private final ConcurrentHashMap<String, Long> listRetryAt = new ConcurrentHashMap<>();

  private final LongSupplier clock;

  /**
   * @param disk the disk tier, or null for none (a local store is its own disk tier)
   * @param prefetchExecutor runs {@link #prefetch} work
   */
  public ChunkReader(
      BlobStore store, long memoryBytes, DiskChunkCache disk, Executor prefetchExecutor) {
    this(store, memoryBytes, disk, prefetchExecutor, 0);
  }

  /**
   * @param windowBytes on a miss, fetch this many bytes of the pack from the chunk on in one ranged
   *     read and keep every whole chunk in it (neighbours in a pack are usually read together:
   *     files of one directory, in import order). 0 fetches single chunks, which suits a local
   *     store.
   */
  public ChunkReader(
      BlobStore store,
      long memoryBytes,
      DiskChunkCache disk,
      Executor prefetchExecutor,
      int windowBytes) {
    this(store, memoryBytes, disk, prefetchExecutor, windowBytes, System::nanoTime);
  }

  /**
   * As above, with the clock ({@link System#nanoTime} elsewhere) that times retries of chunk lists.
   */
  public ChunkReader(
      BlobStore store,
      long memoryBytes,
      DiskChunkCache disk,
      Executor prefetchExecutor,
      int windowBytes,
      LongSupplier nanoClock) {
    this.clock = nanoClock;
    this.windowBytes = windowBytes;
    this.store = store;
    this.disk = disk;
    this.prefetchExecutor = prefetchExecutor;
    this.memory =
        Caffeine.newBuilder()
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
    if (windowBytes > loc.storedLength()) {
      return loadWindow(loc);
    }
    ByteBuffer stored = store.readFully(loc.pack(), loc.offset(), loc.storedLength());
    storeFetches.increment();
    storeBytes.add(loc.storedLength());
    return verified(loc, stored.array(), 0);
  }

  /**
   * Checks stored bytes (at {@code at} in {@code buf}) against the chunk's digest, and caches them
   * on disk if the disk takes them: a chunk that was fetched and verified is served either way.
   */
  private byte[] verified(ChunkLocation loc, byte[] buf, int at) throws IOException {
    byte[] stored =
        at == 0 && buf.length == loc.storedLength()
            ? buf
            : java.util.Arrays.copyOfRange(buf, at, at + loc.storedLength());
    byte[] plain;
    try {
      plain = loc.codec().decode(stored, loc.plainLength());
    } catch (IOException e) {
      corrupt.increment();
      LOG.error(
          "chunk {} in {} at {} does not decode: {}",
          loc.digest(),
          loc.pack(),
          loc.offset(),
          e.getMessage());
      throw new CorruptChunkException(
          "chunk " + loc.digest() + " does not decode: " + e.getMessage());
    }
    Digest got = loc.digest().algorithm().digest(plain);
    if (!got.equals(loc.digest())) {
      corrupt.increment();
      LOG.error(
          "chunk {} in {} at {} is corrupt: content digest is {}",
          loc.digest(),
          loc.pack(),
          loc.offset(),
          got);
      throw new CorruptChunkException(
          "chunk " + loc.digest() + " is corrupt (content digest " + got + ")");
    }
    if (disk != null) {
      disk.put(loc.digest(), plain);
    }
    return plain;
  }

  /**
   * One ranged read from {@code loc} to the end of the window, split into the whole chunks it
   * holds. Neighbours nobody is fetching yet are claimed first, so concurrent demands for them wait
   * for this read instead of issuing their own; a neighbour that fails its digest is dropped.
   */
  private byte[] loadWindow(ChunkLocation loc) throws IOException {
    List<ChunkLocation> window = new java.util.ArrayList<>();
    List<CompletableFuture<byte[]>> claimed = new java.util.ArrayList<>();
    window.add(loc);
    claimed.add(null);
    long end = loc.offset() + loc.storedLength();
    List<ChunkLocation> neighbours;
    try {
      neighbours = packIndex(loc.pack());
    } catch (StoreUnavailableException e) {
      throw e; // the chunk's own read would fail the same way
    } catch (InterruptedIOException e) {
      throw e;
    } catch (IOException e) {
      LOG.warn(
          "no chunk list for {} ({}); reading its chunks one at a time for {} s",
          loc.pack(),
          e.getMessage(),
          LIST_RETRY.toSeconds());
      neighbours = List.of();
    }
    for (int i = firstAtOrAfter(neighbours, end); i < neighbours.size(); i++) {
      ChunkLocation n = neighbours.get(i);
      if (n.offset() != end || n.offset() + n.storedLength() > loc.offset() + windowBytes) {
        break;
      }
      CompletableFuture<byte[]> f = new CompletableFuture<>();
      if (memory.getIfPresent(n.digest()) != null || inflight.putIfAbsent(n.digest(), f) != null) {
        break;
      }
      window.add(n);
      claimed.add(f);
      end = n.offset() + n.storedLength();
    }
    byte[] mine = null;
    try {
      ByteBuffer bytes = store.readFully(loc.pack(), loc.offset(), (int) (end - loc.offset()));
      storeFetches.increment();
      storeBytes.add(end - loc.offset());
      byte[] buf = bytes.array();
      for (int i = 0; i < window.size(); i++) {
        ChunkLocation c = window.get(i);
        int at = (int) (c.offset() - loc.offset());
        if (i == 0) {
          mine = verified(c, buf, at);
          continue;
        }
        try {
          byte[] v = verified(c, buf, at);
          memory.put(c.digest(), v);
          windowChunks.increment();
          claimed.get(i).complete(v);
        } catch (IOException e) {
          claimed.get(i).completeExceptionally(e);
        }
      }
      return mine;
    } catch (IOException | RuntimeException e) {
      for (CompletableFuture<byte[]> f : claimed) {
        if (f != null) {
          f.completeExceptionally(e);
        }
      }
      throw e;
    } finally {
      for (int i = 1; i < window.size(); i++) {
        inflight.remove(window.get(i).digest(), claimed.get(i));
      }
    }
  }

  /** The first chunk of an offset-sorted pack list at or after {@code offset} (binary search). */
  private static int firstAtOrAfter(List<ChunkLocation> sorted, long offset) {
    int lo = 0;
    int hi = sorted.size();
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (sorted.get(mid).offset() < offset) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  /**
   * A pack's chunk list, sorted by offset; fetched once per pack. A failure is remembered for
   * {@link #LIST_RETRY} (the list reads as empty meanwhile), unless the store was down, which says
   * nothing of the list, or the read was interrupted.
   */
  private List<ChunkLocation> packIndex(String pack) throws IOException {
    Long retryAt = listRetryAt.get(pack);
    if (retryAt != null) {
      if (clock.getAsLong() - retryAt < 0) {
        return List.of();
      }
      listRetryAt.remove(pack, retryAt);
    }
    CompletableFuture<List<ChunkLocation>> mine = new CompletableFuture<>();
    CompletableFuture<List<ChunkLocation>> theirs = packIndexes.putIfAbsent(pack, mine);
    if (theirs != null) {
      try {
        return theirs.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted reading " + pack + ".idx");
      } catch (ExecutionException e) {
        return List.of(); // the fetch that failed reported it; read without neighbours
      }
    }
    try {
      String name = BlobNames.chunkListOf(pack);
      // One ranged read usually holds the whole list; only a larger one needs its size first.
      ByteBuffer first = ByteBuffer.allocate(1 << 20);
      int n = store.read(name, 0, first.capacity(), first);
      storeFetches.increment();
      byte[] idx;
      if (n < first.capacity()) {
        idx = java.util.Arrays.copyOf(first.array(), n);
      } else {
        long size =
            store
                .size(name)
                .orElseThrow(() -> new IOException("pack index " + name + " is missing"));
        idx = store.readFully(name, 0, Math.toIntExact(size)).array();
        storeFetches.increment();
      }
      List<ChunkLocation> list = new java.util.ArrayList<>(PackWriter.decodeIndex(pack, idx));
      list.sort(java.util.Comparator.comparingLong(ChunkLocation::offset));
      mine.complete(list);
      return list;
    } catch (IOException | RuntimeException e) {
      if (!(e instanceof StoreUnavailableException || e instanceof InterruptedIOException)) {
        listRetryAt.put(pack, clock.getAsLong() + LIST_RETRY.toNanos());
      }
      packIndexes.remove(pack, mine);
      mine.completeExceptionally(e);
      throw e;
    }
  }

  /** Whether a chunk is in memory or being fetched (so a read of it now waits for no new fetch). */
  public boolean isReady(Digest d) {
    return memory.getIfPresent(d) != null || inflight.containsKey(d);
  }

  /** Fetches a chunk into memory in the background unless it is there or on its way. */
  public void prefetch(ChunkLocation loc) {
    if (memory.getIfPresent(loc.digest()) != null || inflight.containsKey(loc.digest())) {
      return;
    }
    prefetchExecutor.execute(
        () -> {
          try {
            get(loc);
          } catch (IOException | UncheckedIOException e) {
            LOG.debug("prefetch of {} failed: {}", loc.digest(), e.toString());
          }
        });
  }

  /** Counters for people and tests. */
  public record Stats(
      long requests,
      long memoryHits,
      long diskHits,
      long storeFetches,
      long storeBytes,
      long corrupt,
      long memoryEntries,
      long windowChunks) {}

  /** Counters; {@code windowChunks} counts neighbours that came along with another chunk's read. */
  public Stats stats() {
    return new Stats(
        requests.sum(),
        memoryHits.sum(),
        diskHits.sum(),
        storeFetches.sum(),
        storeBytes.sum(),
        corrupt.sum(),
        memory.estimatedSize(),
        windowChunks.sum());
  }

  /** Drops every chunk held in memory (tests, and the "cold2" benchmark phase). */
  public void invalidateMemory() {
    memory.invalidateAll();
  }
}
