package dev.skiff.bench;

import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.index.IndexWriter;
import dev.skiff.casfs.index.Inode;
import dev.skiff.casfs.pack.ChunkLocation;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The in-process costs on a read's path: opening a 100,000-entry index, a directory-entry lookup
 * and an inode fetch in it, and a chunk served from the memory cache. (Digests: {@link
 * DigestBenchmark}.)
 *
 * <pre>
 * java $(sed -n 's/^skiff.jvm.flags=//p' jvm.properties) -jar bench/target/skiff-bench.jar ChunkPathBenchmark \
 *     -jvmArgsAppend "$(sed -n 's/^skiff.jvm.flags=//p' jvm.properties)"
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(2)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class ChunkPathBenchmark {
  private byte[] chunk;
  private Path dir;
  private ImageIndex index;
  private ChunkReader reader;
  private ChunkLocation cached;
  private byte[][] names;
  private int next;

  @Setup(Level.Trial)
  public void setUp() throws IOException {
    chunk = new byte[1 << 20];
    new SplittableRandom(1).nextBytes(chunk);
    dir = Files.createTempDirectory("skiff-jmh");
    names = new byte[1000][];
    try (IndexWriter w = new IndexWriter(dir, DigestAlgorithm.XXH3_128, 1 << 20)) {
      w.putInode(new Inode(1, Inode.S_IFDIR | 0755, 0, 0, 2, 0, 0, 0, 0, 0, false));
      for (int i = 0; i < 100_000; i++) {
        byte[] name = String.format("file-%06d.py", i).getBytes(StandardCharsets.UTF_8);
        if (i % 100 == 0) {
          names[i / 100] = name;
        }
        w.putInode(new Inode(i + 2, Inode.S_IFREG | 0644, 0, 0, 1, 100, 0, 0, 0, 0, true));
        w.putDirent(1, i, name, i + 2);
      }
      w.finish(dir.resolve("index.mdb"));
    }
    index = ImageIndex.open(dir.resolve("index.mdb"));
    BlobStore store = BlobStores.local(dir.resolve("blobs"));
    store.put("packs/x/p", new ByteArrayInputStream(chunk));
    reader = new ChunkReader(store, 64 << 20, null, Runnable::run);
    cached =
        new ChunkLocation(
            DigestAlgorithm.XXH3_128.digest(chunk),
            "packs/x/p",
            0,
            chunk.length,
            chunk.length,
            dev.skiff.casfs.pack.Codec.NONE);
    reader.get(cached);
  }

  @TearDown(Level.Trial)
  public void tearDown() throws IOException {
    index.close();
    try (var s = Files.walk(dir)) {
      s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }

  /** A FUSE lookup: directory entry by name, then the child's inode. */
  @Benchmark
  public Object lookupAndStat() {
    byte[] name = names[next++ % names.length];
    return index.inode(index.lookup(1, name));
  }

  /** Opening an image (100,000 entries): map the index, read its header. */
  @Benchmark
  public long openIndex() throws IOException {
    try (ImageIndex i = ImageIndex.open(dir.resolve("index.mdb"))) {
      return i.inodeCount();
    }
  }

  /** A read whose chunk is in the memory cache. */
  @Benchmark
  public Object memoryCacheHit() throws IOException {
    return reader.get(cached);
  }
}
