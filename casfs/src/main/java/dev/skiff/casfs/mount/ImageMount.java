package dev.skiff.casfs.mount;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.NoSuchImageException;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.cache.DiskChunkCache;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.fuse.FuseMount;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.Remotes;
import dev.skiff.casfs.store.S3Location;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * An image mounted read-only through FUSE and served by this process, with its whole read path:
 * pulled first when it lives in a bucket (tag, then index; a {@link MountHook} may fetch more
 * alongside), chunks read lazily through the memory cache, the disk cache for a remote image, and
 * the store, with neighbour windows and metering. What {@code skiff mount} runs and what sandboxes
 * run on. Needs FUSE, nothing of gVisor.
 *
 * <p>Threads: the FUSE loop threads of {@link Options#threads}, and up to {@link
 * Options#fetchThreads} for prefetch and read-ahead, which end after 30 s without work. Per-mount
 * state is bounded; closing releases all of it.
 */
public final class ImageMount implements AutoCloseable {

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
      boolean debug) {
    public static Options defaults() {
      return new Options(8, 512L << 20, null, 20L << 30, null, 8, false);
    }

    public Options withMemoryCache(long bytes) {
      return new Options(threads, bytes, diskCache, diskCacheSize, window, fetchThreads, debug);
    }
  }

  private final ImageSpec spec;
  private final ImageRef ref;
  private final Digest digest;
  private final S3Location where;
  private final BlobStore remoteStore;
  private final BlobStore source;
  private final ThreadPoolExecutor pool;
  private final ImageIndex index;
  private final ChunkReader chunks;
  private final DiskChunkCache disk;
  private final ImageFileSystem fs;
  private final MountHook hook;
  private final FuseMount mount;
  private boolean closed;

  private ImageMount(Builder b) {
    this.spec = b.spec;
    this.ref = b.ref;
    this.digest = b.digest;
    this.where = b.where;
    this.remoteStore = b.remoteStore;
    this.source = b.source;
    this.pool = b.pool;
    this.index = b.index;
    this.chunks = b.chunks;
    this.disk = b.disk;
    this.fs = b.fs;
    this.hook = b.hook;
    this.mount = b.mount;
  }

  /** Mutable state while a mount comes up, so that a failure part way closes what was opened. */
  private static final class Builder {
    ImageSpec spec;
    ImageRef ref;
    Digest digest;
    S3Location where;
    BlobStore remoteStore;
    BlobStore source;
    ThreadPoolExecutor pool;
    ImageIndex index;
    ChunkReader chunks;
    DiskChunkCache disk;
    ImageFileSystem fs;
    MountHook hook;
    FuseMount mount;

    void closeQuietly() {
      for (AutoCloseable c : new AutoCloseable[] {mount, index, remoteStore}) {
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

  /**
   * Mounts {@code spec} (a stored image, or one in a bucket: its tag and index are pulled first) at
   * {@code mountpoint}. The tag and the index of a bucket image are fetched with one GET each;
   * {@code hook} hears of the index digest as soon as the tag names it.
   *
   * @throws NoSuchImageException if there is no such tag (here, or in the bucket)
   * @throws IllegalArgumentException for a host directory, which needs no mount
   */
  public static ImageMount mount(
      ImageStore store, ImageSpec spec, Remotes remotes, Path mountpoint, Options o, MountHook hook)
      throws IOException {
    Builder b = new Builder();
    b.spec = spec;
    b.hook = hook == null ? MountHook.NONE : hook;
    try {
      b.pool =
          new ThreadPoolExecutor(
              Math.max(1, o.fetchThreads()),
              Math.max(1, o.fetchThreads()),
              30,
              TimeUnit.SECONDS,
              new LinkedBlockingQueue<>(),
              r -> {
                Thread th = new Thread(r, "casfs-prefetch");
                th.setDaemon(true);
                return th;
              });
      b.pool.allowCoreThreadTimeOut(true);
      switch (spec) {
        case ImageSpec.InBucket bucket -> {
          b.where = remotes.location(bucket.bucketUrl());
          b.ref = bucket.ref();
          b.remoteStore = remotes.open(b.where, store.scratch());
          b.digest = ImageStore.remoteTag(b.remoteStore, b.where, b.ref);
          b.hook.resolved(b.remoteStore, b.digest, b.pool);
          store.pull(b.remoteStore, b.where, b.ref, b.digest);
        }
        case ImageSpec.Stored stored -> {
          b.ref = stored.ref();
          b.digest = store.resolve(b.ref).orElseThrow(() -> new NoSuchImageException(b.ref, null));
          b.where = store.remoteOf(b.ref).map(remotes::relocate).orElse(null);
          if (b.where != null) {
            b.remoteStore = remotes.open(b.where, store.scratch());
          }
          b.hook.resolved(b.remoteStore != null ? b.remoteStore : store.blobs(), b.digest, b.pool);
        }
        case ImageSpec.HostDirectory dir ->
            throw new IllegalArgumentException(
                "a host directory (" + dir + ") is used as it is, not mounted");
      }
      b.source = b.remoteStore != null ? b.remoteStore : store.blobs();
      BlobStore chunkStore =
          b.remoteStore != null ? BlobStores.metered(b.remoteStore) : store.blobs();
      Path diskDir =
          o.diskCache() != null
              ? o.diskCache()
              : (b.remoteStore != null ? store.chunkCacheDir() : null);
      b.disk = diskDir == null ? null : new DiskChunkCache(diskDir, o.diskCacheSize());
      int window = (int) (o.window() != null ? o.window() : (b.remoteStore != null ? 1 << 20 : 0));
      b.index = store.openIndex(b.digest);
      b.chunks = new ChunkReader(chunkStore, o.memoryCache(), b.disk, b.pool, window);
      b.fs = new ImageFileSystem(b.index, b.chunks);
      b.fs.setAccessListener(b.hook.opened(b.index, b.chunks));
      FuseMount.Options d = FuseMount.Options.defaults();
      b.mount =
          FuseMount.mount(
              mountpoint,
              b.fs,
              new FuseMount.Options(
                  o.threads(), d.cacheSeconds(), "skiff:" + b.ref, d.readAheadKb(), o.debug()));
      return new ImageMount(b);
    } catch (IOException | RuntimeException e) {
      b.closeQuietly();
      throw e;
    }
  }

  /** How the image was named. */
  public ImageSpec spec() {
    return spec;
  }

  /** The image's tag in the local store. */
  public ImageRef ref() {
    return ref;
  }

  public Digest digest() {
    return digest;
  }

  public ImageIndex index() {
    return index;
  }

  /** The image's OCI config as stored in its index (JSON), or null for a plain root filesystem. */
  public String configJson() {
    return index.meta("config");
  }

  public Path mountpoint() {
    return mount.mountpoint();
  }

  /** The bucket the chunks come from, or empty for an image in the local store. */
  public Optional<S3Location> remote() {
    return Optional.ofNullable(where);
  }

  /**
   * Where the image's blobs (and what is kept next to them, traces) live: its bucket, or the store.
   */
  public BlobStore source() {
    return source;
  }

  public ChunkReader chunks() {
    return chunks;
  }

  public ImageFileSystem filesystem() {
    return fs;
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

  /**
   * Unmounts (idempotent; safe from a shutdown hook). The index stays open until {@link #close}.
   */
  public void unmount() throws IOException {
    mount.close();
  }

  /**
   * Unmounts, tells the hook (which may still read the index: a recording is saved then), and
   * releases everything. Idempotent.
   */
  @Override
  public synchronized void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    IOException first = null;
    try {
      mount.close();
    } catch (IOException e) {
      first = e;
    }
    try {
      hook.unmounted(this);
    } catch (IOException | RuntimeException e) {
      first = first == null ? new IOException("after unmounting " + ref + ": " + e, e) : first;
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
