package dev.skiff.tools;

import dev.skiff.casfs.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.cache.DiskChunkCache;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.fuse.FuseMount;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.S3Location;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.tracer.Trace;
import dev.skiff.tracer.TracePrefetcher;
import dev.skiff.tracer.TraceRecorder;
import dev.skiff.tracer.TraceStore;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "mount", mixinStandardHelpOptions = true,
    description = {"Mount an image read-only through FUSE. Stays in the foreground until Ctrl-C or skiff umount.",
        "IMAGE is NAME[:TAG] in the local store, or s3://BUCKET[/PREFIX]/NAME[:TAG] (pulled first, then read lazily",
        "from the bucket through the disk cache). A stale mount left at MOUNTPOINT by a killed process is cleared first."})
final class MountCommand implements Callable<Integer> {
  @Mixin
  SkiffCli.StoreOptions store;

  @Mixin
  RemoteOptions remote;

  @Parameters(index = "0", paramLabel = "IMAGE")
  String ref;

  @Parameters(index = "1", paramLabel = "MOUNTPOINT")
  Path mountpoint;

  @Option(names = "--threads", defaultValue = "8", description = "FUSE loop threads (default ${DEFAULT-VALUE})")
  int threads;

  @Option(names = "--memory-cache", defaultValue = "512M", paramLabel = "SIZE",
      description = "chunk cache in memory (default ${DEFAULT-VALUE})")
  String memoryCache;

  @Option(names = "--disk-cache", paramLabel = "DIR",
      description = "chunk cache on disk (default for remote images: $SKIFF_HOME/cache/chunks; none for local ones)")
  Path diskCache;

  @Option(names = "--disk-cache-size", defaultValue = "20G", paramLabel = "SIZE",
      description = "bound of the disk cache (default ${DEFAULT-VALUE})")
  String diskCacheSize;

  @Option(names = "--window", paramLabel = "SIZE",
      description = "on a miss, read this much of the pack at once and keep the neighbouring chunks"
          + " (default 1M for remote images, 0 for local ones)")
  String window;

  @Option(names = "--fetch-threads", defaultValue = "8",
      description = "fetches ahead of readers (read-ahead) run in parallel up to this many; each FUSE thread"
          + " also makes its own demand fetches (default ${DEFAULT-VALUE})")
  int fetchThreads;

  @Option(names = "--record", description = "record which chunks this start reads, and when; on unmount merge the"
      + " recording into the image's trace (stored next to the image, in the bucket for remote images)")
  boolean record;

  @Option(names = "--no-prefetch", description = "do not replay the image's trace as prefetch (to compare)")
  boolean noPrefetch;

  @Option(names = "--trace-key", paramLabel = "KEY",
      description = "which of the image's start profiles to record and replay (default: the image's main one)")
  String traceKey;

  @Option(names = "--debug-fuse", description = "print every FUSE request (libfuse -d)")
  boolean debug;

  @Override
  public Integer call() throws Exception {
    ExecutorService prefetch = Executors.newFixedThreadPool(Math.max(1, fetchThreads), t -> {
      Thread th = new Thread(t, "casfs-prefetch");
      th.setDaemon(true);
      return th;
    });
    BlobStore remoteStore = null;
    try (ImageStore s = ImageStore.open(store.home())) {
      ImageRef r;
      S3Location where;
      if (ref.startsWith("s3://")) {
        String[] parts = RemoteOptions.splitImageUrl(ref);
        where = remote.location(parts[0]);
        r = ImageRef.parse(parts[1]);
        remoteStore = remote.open(where, s.scratch());
        s.pull(remoteStore, where, r);
      } else {
        r = ImageRef.parse(ref);
        where = s.remoteOf(r).map(w -> remote.endpoint == null ? w : remote.location(w.url())).orElse(null);
        if (where != null) {
          remoteStore = remote.open(where, s.scratch());
        }
      }
      BlobStore chunkStore = remoteStore != null ? BlobStores.metered(remoteStore) : s.blobs();
      Path diskDir = diskCache != null ? diskCache : (remoteStore != null ? s.chunkCacheDir() : null);
      DiskChunkCache disk = diskDir == null ? null : new DiskChunkCache(diskDir, Human.parseBytes(diskCacheSize));
      int windowBytes = (int) (window != null ? Human.parseBytes(window) : (remoteStore != null ? 1 << 20 : 0));
      Digest digest = s.resolve(r).orElseThrow(() -> new java.io.IOException(
          "no image " + r + " in " + s.home() + " (see skiff images)"));
      try (ImageIndex index = s.openIndex(digest)) {
        ChunkReader chunks = new ChunkReader(chunkStore, Human.parseBytes(memoryCache), disk, prefetch, windowBytes);
        ImageFileSystem fs = new ImageFileSystem(index, chunks);
        BlobStore traceStore = remoteStore != null ? remoteStore : s.blobs();
        TraceRecorder recorder = record ? new TraceRecorder() : null;
        fs.setAccessListener(recorder);
        Trace trace = noPrefetch ? null : TraceStore.load(traceStore, digest, traceKey).orElse(null);
        long replayStart = System.nanoTime();
        TracePrefetcher replay = trace == null ? null : TracePrefetcher.start(trace, index, chunks, fetchThreads);
        FuseMount.Options d = FuseMount.Options.defaults();
        FuseMount.Options opts = new FuseMount.Options(threads, d.cacheSeconds(), "skiff:" + r, d.readAheadKb(), debug);
        try (FuseMount m = FuseMount.mount(mountpoint, fs, opts)) {
          CountDownLatch summarised = new CountDownLatch(1);
          Thread hook = new Thread(() -> {
            try {
              m.close();
              // Ctrl-C: let the main thread save the recording and print its summary before exit.
              // (Not a join: the main thread ends in System.exit, which blocks during shutdown.)
              summarised.await(30, TimeUnit.SECONDS);
            } catch (Exception e) {
              System.err.println("skiff mount: unmounting " + mountpoint + ": " + e.getMessage());
            }
          }, "skiff-unmount");
          Runtime.getRuntime().addShutdownHook(hook);
          System.out.printf(Locale.ROOT, "mounted %s at %s (%s inodes%s%s%s); Ctrl-C or 'skiff umount %s' to stop%n", r,
              m.mountpoint(), Human.count(index.inodeCount()), where == null ? "" : ", chunks from " + where.url(),
              trace == null ? "" : ", prefetching " + Human.count(trace.entries().size()) + " traced chunks",
              record ? ", recording" : "", m.mountpoint());
          System.out.flush();
          if (replay != null) {
            Thread.ofPlatform().daemon().name("skiff-prefetch-report").start(() -> {
              try {
                replay.awaitDone(Long.MAX_VALUE);
                System.out.printf(Locale.ROOT, "prefetched %s traced chunks in %.0f ms (%s not in this image)%n",
                    Human.count(replay.fetched()), (System.nanoTime() - replayStart) / 1e6, Human.count(replay.skipped()));
                System.out.flush();
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            });
          }
          m.awaitUnmounted();
          try {
            Runtime.getRuntime().removeShutdownHook(hook);
          } catch (IllegalStateException shuttingDown) {
            // the hook is running or ran: it unmounted
          }
          if (replay != null) {
            replay.close();
          }
          if (recorder != null && recorder.size() > 0) {
            Trace recording = recorder.toTrace(index);
            Trace merged = TraceStore.record(traceStore, digest, traceKey, recording);
            System.out.printf(Locale.ROOT, "recorded %s chunks (%s) into the trace of %s: %d recordings, %s chunks%n",
                Human.count(recording.entries().size()), Human.bytes(recording.bytes()), r, merged.recordings(),
                Human.count(merged.entries().size()));
          }
          ChunkReader.Stats st = chunks.stats();
          CacheCommand.addCounters(s, st, disk == null ? 0 : disk.evictions());
          System.out.printf(Locale.ROOT, "unmounted %s: %s chunk reads, %s from memory, %s from disk cache, "
                  + "%s from the store (%s in %s reads)%n", m.mountpoint(), Human.count(st.requests()),
              Human.count(st.memoryHits()), Human.count(st.diskHits()),
              Human.count(st.requests() - st.memoryHits() - st.diskHits()), Human.bytes(st.storeBytes()),
              Human.count(st.storeFetches()));
          System.out.flush();
          summarised.countDown();
        }
      }
    } finally {
      prefetch.shutdownNow();
      if (remoteStore != null) {
        remoteStore.close();
      }
    }
    return 0;
  }
}
