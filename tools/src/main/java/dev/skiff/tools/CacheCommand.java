package dev.skiff.tools;

import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.cache.DiskChunkCache;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "cache",
    mixinStandardHelpOptions = true,
    description = "The on-disk chunk cache that mounts of remote images read through.",
    subcommands = {CacheCommand.Stats.class, CacheCommand.Gc.class})
final class CacheCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  /** Counters that mounts add to when they end, kept next to the cache. */
  static Path countersFile(ImageStore s) {
    return s.chunkCacheDir().getParent().resolve("counters.properties");
  }

  static synchronized void addCounters(
      ImageStore s, dev.skiff.casfs.cache.ChunkReader.Stats st, long diskEvictions)
      throws Exception {
    Path f = countersFile(s);
    Files.createDirectories(f.getParent());
    Properties p = new Properties();
    if (Files.exists(f)) {
      try (var in = Files.newInputStream(f)) {
        p.load(in);
      }
    }
    add(p, "chunk-reads", st.requests());
    add(p, "memory-hits", st.memoryHits());
    add(p, "disk-hits", st.diskHits());
    add(p, "store-fetches", st.storeFetches());
    add(p, "store-bytes", st.storeBytes());
    add(p, "neighbour-chunks", st.windowChunks());
    add(p, "corrupt", st.corrupt());
    add(p, "disk-evictions", diskEvictions);
    Path tmp = f.resolveSibling("counters.properties.tmp");
    try (var out = Files.newOutputStream(tmp)) {
      p.store(out, "cumulative chunk reader counters of mounts that ended");
    }
    Files.move(
        tmp,
        f,
        java.nio.file.StandardCopyOption.ATOMIC_MOVE,
        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
  }

  private static void add(Properties p, String k, long v) {
    p.setProperty(k, Long.toString(Long.parseLong(p.getProperty(k, "0")) + v));
  }

  @Command(
      name = "stats",
      mixinStandardHelpOptions = true,
      description = "Size of the disk cache and hits per tier.")
  static final class Stats implements Callable<Integer> {
    @Mixin SkiffCli.StoreOptions store;

    @Override
    public Integer call() throws Exception {
      try (ImageStore s = ImageStore.open(store.home())) {
        DiskChunkCache disk = new DiskChunkCache(s.chunkCacheDir(), Long.MAX_VALUE);
        System.out.printf(
            Locale.ROOT,
            "disk cache   %s: %s chunks, %s%n",
            s.chunkCacheDir(),
            Human.count(disk.entries()),
            Human.bytes(disk.bytes()));
        Properties p = new Properties();
        Path f = countersFile(s);
        if (Files.exists(f)) {
          try (var in = Files.newInputStream(f)) {
            p.load(in);
          }
        }
        long reads = Long.parseLong(p.getProperty("chunk-reads", "0"));
        System.out.printf(
            Locale.ROOT, "chunk reads  %s (by mounts that have ended)%n", Human.count(reads));
        for (String[] k :
            new String[][] {
              {"memory-hits", "memory"},
              {"disk-hits", "disk"},
              {"store-fetches", "store GETs"},
              {"neighbour-chunks", "neighbours"}
            }) {
          long v = Long.parseLong(p.getProperty(k[0], "0"));
          System.out.printf(Locale.ROOT, "  %-11s %s%n", k[1], Human.count(v));
        }
        System.out.printf(
            Locale.ROOT,
            "fetched      %s from stores; %s corrupt chunks refused; %s evicted from disk%n",
            Human.bytes(Long.parseLong(p.getProperty("store-bytes", "0"))),
            p.getProperty("corrupt", "0"),
            p.getProperty("disk-evictions", "0"));
      }
      return 0;
    }
  }

  @Command(
      name = "gc",
      mixinStandardHelpOptions = true,
      description = "Shrink the disk cache to a size, dropping the least recently used chunks.")
  static final class Gc implements Callable<Integer> {
    @Mixin SkiffCli.StoreOptions store;

    @Option(
        names = "--max",
        required = true,
        paramLabel = "SIZE",
        description = "keep at most this much (e.g. 20G)")
    String max;

    @Override
    public Integer call() throws Exception {
      try (ImageStore s = ImageStore.open(store.home())) {
        long before = new DiskChunkCache(s.chunkCacheDir(), Long.MAX_VALUE).bytes();
        DiskChunkCache disk =
            new DiskChunkCache(s.chunkCacheDir(), dev.skiff.api.Resources.parseBytes(max));
        System.out.printf(
            Locale.ROOT,
            "disk cache: %s -> %s (%s chunks evicted)%n",
            Human.bytes(before),
            Human.bytes(disk.bytes()),
            Human.count(disk.evictions()));
      }
      return 0;
    }
  }
}
