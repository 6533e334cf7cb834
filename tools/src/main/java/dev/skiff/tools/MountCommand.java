package dev.skiff.tools;

import dev.skiff.casfs.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.cache.DiskChunkCache;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.fuse.FuseMount;
import dev.skiff.casfs.index.ImageIndex;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "mount", mixinStandardHelpOptions = true,
    description = {"Mount an image read-only through FUSE. Stays in the foreground until Ctrl-C or skiff umount.",
        "A stale mount left at MOUNTPOINT by a killed process is cleared first."})
final class MountCommand implements Callable<Integer> {
  @Mixin
  SkiffCli.StoreOptions store;

  @Parameters(index = "0", paramLabel = "NAME[:TAG]")
  String ref;

  @Parameters(index = "1", paramLabel = "MOUNTPOINT")
  Path mountpoint;

  @Option(names = "--threads", defaultValue = "8", description = "FUSE loop threads (default ${DEFAULT-VALUE})")
  int threads;

  @Option(names = "--memory-cache", defaultValue = "512M", paramLabel = "SIZE",
      description = "chunk cache in memory (default ${DEFAULT-VALUE})")
  String memoryCache;

  @Option(names = "--disk-cache", paramLabel = "DIR",
      description = "chunk cache on disk (useful when the store is remote; off by default for the local store)")
  Path diskCache;

  @Option(names = "--disk-cache-size", defaultValue = "10G", paramLabel = "SIZE",
      description = "bound of the disk cache (default ${DEFAULT-VALUE})")
  String diskCacheSize;

  @Option(names = "--debug-fuse", description = "print every FUSE request (libfuse -d)")
  boolean debug;

  @Override
  public Integer call() throws Exception {
    ImageRef r = ImageRef.parse(ref);
    ExecutorService prefetch = Executors.newFixedThreadPool(4, t -> {
      Thread th = new Thread(t, "casfs-prefetch");
      th.setDaemon(true);
      return th;
    });
    try (ImageStore s = ImageStore.open(store.home()); ImageIndex index = s.openIndex(r)) {
      DiskChunkCache disk = diskCache == null ? null : new DiskChunkCache(diskCache, Human.parseBytes(diskCacheSize));
      ChunkReader chunks = new ChunkReader(s.blobs(), Human.parseBytes(memoryCache), disk, prefetch);
      ImageFileSystem fs = new ImageFileSystem(index, chunks);
      FuseMount.Options opts = FuseMount.Options.defaults().withThreads(threads).withFsName("skiff:" + r);
      opts = new FuseMount.Options(opts.threads(), opts.cacheSeconds(), opts.fsName(), opts.readAheadKb(), debug);
      try (FuseMount m = FuseMount.mount(mountpoint, fs, opts)) {
        Thread hook = new Thread(() -> {
          try {
            m.close();
          } catch (Exception e) {
            System.err.println("skiff mount: unmounting " + mountpoint + ": " + e.getMessage());
          }
        }, "skiff-unmount");
        Runtime.getRuntime().addShutdownHook(hook);
        System.out.printf(Locale.ROOT, "mounted %s at %s (%s inodes); Ctrl-C or 'skiff umount %s' to stop%n", r,
            m.mountpoint(), Human.count(index.inodeCount()), m.mountpoint());
        System.out.flush();
        m.awaitUnmounted();
        try {
          Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
          // the hook is running or ran: it unmounted
        }
        ChunkReader.Stats st = chunks.stats();
        System.out.printf(Locale.ROOT, "unmounted %s: %s chunk reads, %s from memory, %s from disk cache, "
                + "%s fetched from the store (%s)%n", m.mountpoint(), Human.count(st.requests()),
            Human.count(st.memoryHits()), Human.count(st.diskHits()), Human.count(st.storeFetches()),
            Human.bytes(st.storeBytes()));
      }
    } finally {
      prefetch.shutdownNow();
    }
    return 0;
  }
}
