package dev.skiff.tools;

import dev.skiff.api.ImageSpec;
import dev.skiff.api.Resources;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.mount.ImageMount;
import dev.skiff.casfs.mount.MountRegistry;
import dev.skiff.tracer.TraceHook;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "mount",
    mixinStandardHelpOptions = true,
    description = {
      "Mount an image read-only through FUSE. Stays in the foreground until Ctrl-C or skiff umount.",
      "IMAGE is NAME[:TAG] in the local store, or s3://BUCKET[/PREFIX]/NAME[:TAG] (pulled first, then read lazily",
      "from the bucket through the disk cache). A stale mount left at MOUNTPOINT by a killed process is cleared first."
    })
final class MountCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Mixin RemoteOptions remote;

  @Parameters(index = "0", paramLabel = "IMAGE")
  String ref;

  @Parameters(index = "1", paramLabel = "MOUNTPOINT")
  Path mountpoint;

  @Option(
      names = "--threads",
      defaultValue = "8",
      description = "FUSE loop threads (default ${DEFAULT-VALUE})")
  int threads;

  @Option(
      names = "--memory-cache",
      defaultValue = "512M",
      paramLabel = "SIZE",
      description = "chunk cache in memory (default ${DEFAULT-VALUE})")
  String memoryCache;

  @Option(
      names = "--disk-cache",
      paramLabel = "DIR",
      description =
          "chunk cache on disk (default for remote images: $SKIFF_HOME/cache/chunks; none for local ones)")
  Path diskCache;

  @Option(
      names = "--disk-cache-size",
      defaultValue = "20G",
      paramLabel = "SIZE",
      description = "bound of the disk cache (default ${DEFAULT-VALUE})")
  String diskCacheSize;

  @Option(
      names = "--window",
      paramLabel = "SIZE",
      description =
          "on a miss, read this much of the pack at once and keep the neighbouring chunks"
              + " (default 1M for remote images, 0 for local ones)")
  String window;

  @Option(
      names = "--fetch-threads",
      defaultValue = "8",
      description =
          "fetches ahead of readers (read-ahead) run in parallel up to this many; each FUSE thread"
              + " also makes its own demand fetches (default ${DEFAULT-VALUE})")
  int fetchThreads;

  @Option(
      names = "--record",
      description =
          "record which chunks this start reads, and when; on unmount merge the"
              + " recording into the image's trace (stored next to the image, in the bucket for remote images)")
  boolean record;

  @Option(
      names = "--no-prefetch",
      description = "do not replay the image's trace as prefetch (to compare)")
  boolean noPrefetch;

  @Option(
      names = "--trace-key",
      paramLabel = "KEY",
      description =
          "which of the image's start profiles to record and replay (default: the image's main one)")
  String traceKey;

  @Option(names = "--debug-fuse", description = "print every FUSE request (libfuse -d)")
  boolean debug;

  @Override
  public Integer call() throws Exception {
    ImageMount.Options o =
        new ImageMount.Options(
            threads,
            Resources.parseBytes(memoryCache),
            diskCache,
            Resources.parseBytes(diskCacheSize),
            window == null ? null : Resources.parseBytes(window),
            fetchThreads,
            debug);
    TraceHook trace =
        new TraceHook(new TraceHook.Options(!noPrefetch, record, traceKey, fetchThreads));
    ImageSpec spec = ImageSpec.parse(ref);
    try (ImageStore s = ImageStore.open(store.home());
        ImageMount m = ImageMount.mount(s, spec, remote, mountpoint, o, trace)) {
      CountDownLatch summarised = new CountDownLatch(1);
      Thread hook =
          new Thread(
              () -> {
                try {
                  m.unmount();
                  // Ctrl-C: let the main thread save the recording and print its summary before
                  // exit. (Not a join: the main thread ends in System.exit, which blocks during
                  // shutdown.)
                  summarised.await(30, TimeUnit.SECONDS);
                } catch (Exception e) {
                  System.err.println(
                      "skiff mount: unmounting " + mountpoint + ": " + e.getMessage());
                }
              },
              "skiff-unmount");
      Runtime.getRuntime().addShutdownHook(hook);
      if (!record) { // skiff run of this image on this home runs on this mount while it lasts
        MountRegistry.register(s.home(), m);
      }
      System.out.printf(
          Locale.ROOT,
          "mounted %s at %s (%s inodes%s%s%s); Ctrl-C or 'skiff umount %s' to stop%n",
          m.ref(),
          m.mountpoint(),
          Human.count(m.index().inodeCount()),
          m.remote().map(w -> ", chunks from " + w.url()).orElse(""),
          trace
              .trace()
              .map(t -> ", prefetching " + Human.count(t.entries().size()) + " traced chunks")
              .orElse(""),
          record ? ", recording" : "",
          m.mountpoint());
      System.out.flush();
      trace
          .replay()
          .ifPresent(
              replay ->
                  Thread.ofPlatform()
                      .daemon()
                      .name("skiff-prefetch-report")
                      .start(
                          () -> {
                            try {
                              replay.awaitDone(Long.MAX_VALUE);
                              System.out.printf(
                                  Locale.ROOT,
                                  "prefetched %s traced chunks in %.0f ms (%s not in this image)%n",
                                  Human.count(replay.fetched()),
                                  (System.nanoTime() - trace.replayStartNanos()) / 1e6,
                                  Human.count(replay.skipped()));
                              System.out.flush();
                            } catch (InterruptedException e) {
                              Thread.currentThread().interrupt();
                            }
                          }));
      m.awaitUnmounted();
      MountRegistry.unregister(s.home(), m);
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException shuttingDown) {
        // the hook is running or ran: it unmounted
      }
      m.close(); // stops the replay, saves the recording
      trace
          .recorded()
          .ifPresent(
              rec ->
                  System.out.printf(
                      Locale.ROOT,
                      "recorded %s chunks (%s) into the trace of %s: %d recordings, %s chunks%n",
                      Human.count(rec.recording().entries().size()),
                      Human.bytes(rec.recording().bytes()),
                      m.ref(),
                      rec.merged().recordings(),
                      Human.count(rec.merged().entries().size())));
      ChunkReader.Stats st = m.chunks().stats();
      CacheCommand.addCounters(s, st, m.diskEvictions());
      System.out.printf(
          Locale.ROOT,
          "unmounted %s: %s chunk reads, %s from memory, %s from disk cache, "
              + "%s from the store (%s in %s reads)%n",
          m.mountpoint(),
          Human.count(st.requests()),
          Human.count(st.memoryHits()),
          Human.count(st.diskHits()),
          Human.count(st.requests() - st.memoryHits() - st.diskHits()),
          Human.bytes(st.storeBytes()),
          Human.count(st.storeFetches()));
      System.out.flush();
      summarised.countDown();
    }
    return 0;
  }
}
