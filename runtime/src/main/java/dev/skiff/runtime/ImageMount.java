package dev.skiff.runtime;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.cache.DiskChunkCache;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.fuse.FuseMount;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.S3Location;
import dev.skiff.tracer.Trace;
import dev.skiff.tracer.TracePrefetcher;
import dev.skiff.tracer.TraceRecorder;
import dev.skiff.tracer.TraceStore;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * An image mounted read-only through FUSE and served by this process: pulled first when it is named
 * by a bucket URL, its chunks read lazily (from the local store, or from the bucket through the
 * disk cache), its start-up trace replayed as prefetch. What {@code skiff mount} runs in the
 * foreground and what every sandbox's root filesystem is.
 */
public final class ImageMount implements AutoCloseable {

  /** How to reach buckets: the command line's endpoint, region and timeout options. */
  public interface Remotes {
    /** Parses {@code s3://bucket[/prefix]}. */
    S3Location location(String url);

    /** A client for {@code where}. */
    BlobStore open(S3Location where, Path scratch);

    /**
     * Where a pulled image's chunks are read from: where it was pulled from, unless these options
     * name another endpoint (a bucket reached through a proxy, say).
     */
    default S3Location relocate(S3Location pulledFrom) {
      return pulledFrom;
    }

    /**
     * Buckets reached as the AWS tools would: $AWS_ENDPOINT_URL (path-style when set), region and
     * credentials from the usual places.
     */
    static Remotes fromEnvironment() {
      return new Remotes() {
        @Override
        public S3Location location(String url) {
          String ep = System.getenv("AWS_ENDPOINT_URL");
          boolean set = ep != null && !ep.isBlank();
          return S3Location.parse(url, set ? java.net.URI.create(ep) : null, null, set);
        }

        @Override
        public BlobStore open(S3Location where, Path scratch) {
          return BlobStores.s3(where, scratch);
        }
      };
    }
  }

  /**
   * Tuning of one mount. {@code window} null means the default (1 MiB for remote images, none for
   * local ones); {@code diskCache} null means the home's chunk cache for remote images.
   */
  public record Options(
      int threads,
      long memoryCache,
      Path diskCache,
      long diskCacheSize,
      Long window,
      int fetchThreads,
      boolean prefetch,
      boolean record,
      String traceKey,
      boolean debug) {
    public static Options defaults() {
      return new Options(8, 512L << 20, null, 20L << 30, null, 8, true, false, null, false);
    }

    public Options withPrefetch(boolean on) {
      return new Options(
          threads,
          memoryCache,
          diskCache,
          diskCacheSize,
          window,
          fetchThreads,
          on,
          record,
          traceKey,
          debug);
    }

    public Options withRecord(boolean on) {
      return new Options(
          threads,
          memoryCache,
          diskCache,
          diskCacheSize,
          window,
          fetchThreads,
          prefetch,
          on,
          traceKey,
          debug);
    }

    public Options withTraceKey(String key) {
      return new Options(
          threads,
          memoryCache,
          diskCache,
          diskCacheSize,
          window,
          fetchThreads,
          prefetch,
          record,
          key,
          debug);
    }
  }

  private final ImageRef ref;
  private final Digest digest;
  private final S3Location where;
  private final BlobStore remoteStore;
  private final BlobStore traceStore;
  private final ExecutorService pool;
  private final ImageIndex index;
  private final ChunkReader chunks;
  private final DiskChunkCache disk;
  private final Trace trace;
  private final TracePrefetcher replay;
  private final long replayStart;
  private final TraceRecorder recorder;
  private final String traceKey;
  private final FuseMount mount;

  private ImageMount(Builder b) {
    this.ref = b.ref;
    this.digest = b.digest;
    this.where = b.where;
    this.remoteStore = b.remoteStore;
    this.traceStore = b.traceStore;
    this.pool = b.pool;
    this.index = b.index;
    this.chunks = b.chunks;
    this.disk = b.disk;
    this.trace = b.trace;
    this.replay = b.replay;
    this.replayStart = b.replayStart;
    this.recorder = b.recorder;
    this.traceKey = b.traceKey;
    this.mount = b.mount;
  }

  /** Mutable state while a mount comes up, so that a failure part way closes what was opened. */
  private static final class Builder {
    ImageRef ref;
    Digest digest;
    S3Location where;
    BlobStore remoteStore;
    BlobStore traceStore;
    ExecutorService pool;
    ImageIndex index;
    ChunkReader chunks;
    DiskChunkCache disk;
    Trace trace;
    TracePrefetcher replay;
    long replayStart;
    TraceRecorder recorder;
    String traceKey;
    FuseMount mount;

    void closeQuietly() {
      for (AutoCloseable c : new AutoCloseable[] {mount, replay, index, remoteStore}) {
        try {
          if (c != null) {
            c.close();
          }
        } catch (Exception ignored) {
          // already failing; the first error is the one reported
        }
      }
      if (pool != null) {
        pool.shutdownNow();
      }
    }
  }

  /** Splits {@code s3://bucket/prefix/name:tag} into the bucket URL and the image reference. */
  public static String[] splitImageUrl(String url) {
    int slash = url.lastIndexOf('/');
    if (!url.startsWith("s3://") || slash <= "s3://".length()) {
      throw new IllegalArgumentException("want s3://BUCKET[/PREFIX]/NAME[:TAG], got '" + url + "'");
    }
    return new String[] {url.substring(0, slash), url.substring(slash + 1)};
  }

  /**
   * Mounts {@code image} (NAME[:TAG] in the store, or s3://BUCKET[/PREFIX]/NAME[:TAG], pulled
   * first) at {@code mountpoint}; {@code remotes} null reaches buckets {@link
   * Remotes#fromEnvironment() from the environment}. The tag, the index and the trace of a bucket
   * image are fetched with one GET each, the trace while the index travels.
   */
  public static ImageMount mount(
      ImageStore store, String image, Remotes remotes, Path mountpoint, Options o)
      throws IOException {
    if (remotes == null) {
      remotes = Remotes.fromEnvironment();
    }
    Builder b = new Builder();
    b.traceKey = o.traceKey();
    try {
      b.pool =
          Executors.newFixedThreadPool(
              Math.max(1, o.fetchThreads()),
              r -> {
                Thread th = new Thread(r, "casfs-prefetch");
                th.setDaemon(true);
                return th;
              });
      CompletableFuture<Optional<Trace>> pendingTrace = null;
      if (image.startsWith("s3://")) {
        String[] parts = splitImageUrl(image);
        b.where = remotes.location(parts[0]);
        b.ref = ImageRef.parse(parts[1]);
        b.remoteStore = remotes.open(b.where, store.scratch());
        Digest tagged = ImageStore.remoteTag(b.remoteStore, b.where, b.ref);
        if (o.prefetch()) {
          BlobStore from = b.remoteStore;
          pendingTrace =
              CompletableFuture.supplyAsync(
                  () -> {
                    try {
                      return TraceStore.load(from, tagged, o.traceKey());
                    } catch (IOException e) {
                      throw new UncheckedIOException(e);
                    }
                  },
                  b.pool);
        }
        store.pull(b.remoteStore, b.where, b.ref, tagged);
      } else {
        b.ref = ImageRef.parse(image);
        b.where = store.remoteOf(b.ref).map(remotes::relocate).orElse(null);
        if (b.where != null) {
          b.remoteStore = remotes.open(b.where, store.scratch());
        }
      }
      BlobStore chunkStore =
          b.remoteStore != null ? BlobStores.metered(b.remoteStore) : store.blobs();
      Path diskDir =
          o.diskCache() != null
              ? o.diskCache()
              : (b.remoteStore != null ? store.chunkCacheDir() : null);
      b.disk = diskDir == null ? null : new DiskChunkCache(diskDir, o.diskCacheSize());
      int window = (int) (o.window() != null ? o.window() : (b.remoteStore != null ? 1 << 20 : 0));
      b.digest =
          store
              .resolve(b.ref)
              .orElseThrow(
                  () ->
                      new IOException(
                          "no image " + b.ref + " in " + store.home() + " (see skiff images)"));
      b.index = store.openIndex(b.digest);
      b.chunks = new ChunkReader(chunkStore, o.memoryCache(), b.disk, b.pool, window);
      ImageFileSystem fs = new ImageFileSystem(b.index, b.chunks);
      b.traceStore = b.remoteStore != null ? b.remoteStore : store.blobs();
      b.recorder = o.record() ? new TraceRecorder() : null;
      fs.setAccessListener(b.recorder);
      if (o.prefetch()) {
        Optional<Trace> t =
            pendingTrace != null
                ? await(pendingTrace)
                : TraceStore.load(b.traceStore, b.digest, o.traceKey());
        b.trace = t.orElse(null);
      }
      b.replayStart = System.nanoTime();
      b.replay =
          b.trace == null
              ? null
              : TracePrefetcher.start(b.trace, b.index, b.chunks, o.fetchThreads());
      FuseMount.Options d = FuseMount.Options.defaults();
      b.mount =
          FuseMount.mount(
              mountpoint,
              fs,
              new FuseMount.Options(
                  o.threads(), d.cacheSeconds(), "skiff:" + b.ref, d.readAheadKb(), o.debug()));
      return new ImageMount(b);
    } catch (IOException | RuntimeException e) {
      b.closeQuietly();
      throw e;
    }
  }

  private static Optional<Trace> await(CompletableFuture<Optional<Trace>> f) throws IOException {
    try {
      return f.join();
    } catch (CompletionException e) {
      if (e.getCause() instanceof UncheckedIOException io) {
        throw io.getCause();
      }
      throw e;
    }
  }

  public ImageRef ref() {
    return ref;
  }

  public Digest digest() {
    return digest;
  }

  public ImageIndex index() {
    return index;
  }

  public Path mountpoint() {
    return mount.mountpoint();
  }

  /** The bucket the chunks come from, or empty for an image in the local store. */
  public Optional<S3Location> remote() {
    return Optional.ofNullable(where);
  }

  /** The trace being replayed, or empty. */
  public Optional<Trace> trace() {
    return Optional.ofNullable(trace);
  }

  /** The replay of the trace, or empty. */
  public Optional<TracePrefetcher> replay() {
    return Optional.ofNullable(replay);
  }

  /** When the replay started ({@link System#nanoTime()}). */
  public long replayStartNanos() {
    return replayStart;
  }

  public boolean recording() {
    return recorder != null;
  }

  public ChunkReader chunks() {
    return chunks;
  }

  /** Evictions of the disk chunk cache, 0 without one. */
  public long diskEvictions() {
    return disk == null ? 0 : disk.evictions();
  }

  public boolean isMounted() {
    return mount.isMounted();
  }

  public void awaitUnmounted() throws InterruptedException {
    mount.awaitUnmounted();
  }

  /** Unmounts (idempotent; safe from a shutdown hook). */
  public void unmount() throws IOException {
    mount.close();
  }

  /** What a recording added to the image's trace. */
  public record Recorded(Trace recording, Trace merged) {}

  /**
   * Merges what this mount recorded into the image's trace, in the store the image came from (the
   * bucket for a remote image). Call after unmounting. Empty if nothing was recorded.
   */
  public Optional<Recorded> saveRecording() throws IOException {
    if (recorder == null || recorder.size() == 0) {
      return Optional.empty();
    }
    Trace recording = recorder.toTrace(index);
    return Optional.of(
        new Recorded(recording, TraceStore.record(traceStore, digest, traceKey, recording)));
  }

  @Override
  public void close() throws IOException {
    IOException first = null;
    try {
      mount.close();
    } catch (IOException e) {
      first = e;
    }
    if (replay != null) {
      replay.close();
    }
    pool.shutdownNow();
    index.close();
    if (remoteStore != null) {
      try {
        remoteStore.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
