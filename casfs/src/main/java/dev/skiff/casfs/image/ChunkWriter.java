package dev.skiff.casfs.image;

import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.pack.ChunkCatalog;
import dev.skiff.casfs.pack.ChunkLocation;
import dev.skiff.casfs.pack.Codec;
import dev.skiff.casfs.pack.PackWriter;
import dev.skiff.casfs.store.BlobStore;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Cuts file contents into fixed-size chunks aligned to file offsets, names each by its digest, and
 * appends the ones the store lacks to pack files. Files up to the inline limit are kept whole for
 * the index instead. Not thread safe: one import drives one writer (which compresses on a thread of
 * its own).
 */
final class ChunkWriter implements AutoCloseable {
  /** A pack whose blob name is known once it is sealed (at once for packs already stored). */
  static final class PackSlot {
    String name;
  }

  /**
   * A chunk of an imported file: its digest and length at once; where it is stored once the pack
   * thread has compressed and appended it (at once for a chunk the store has), and the pack's name
   * once that pack is sealed.
   */
  static final class PendingChunk {
    final Digest digest;
    final int plainLength;
    // written by the pack thread before finish() returns, read after: finish() orders them
    PackSlot pack;
    long offset;
    int storedLength;
    Codec codec;

    PendingChunk(Digest digest, int plainLength) {
      this.digest = digest;
      this.plainLength = plainLength;
    }

    PendingChunk(
        Digest digest, PackSlot pack, long offset, int storedLength, int plainLength, Codec codec) {
      this(digest, plainLength);
      this.pack = pack;
      this.offset = offset;
      this.storedLength = storedLength;
      this.codec = codec;
    }

    ChunkLocation location() {
      if (pack == null || pack.name == null) {
        throw new IllegalStateException("pack not sealed yet");
      }
      return new ChunkLocation(digest, pack.name, offset, storedLength, plainLength, codec);
    }
  }

  private final BlobStore store;
  private final ChunkCatalog catalog;
  private final DigestAlgorithm algorithm;
  private final int chunkSize;
  private final int inlineLimit;
  private final long packTarget;
  private final int zstdLevel;
  private final Path scratch;
  private final byte[] buf;
  private final Map<Digest, PendingChunk> seen = new HashMap<>();
  private final Map<String, PackSlot> storedPacks = new HashMap<>();
  private final Map<String, Boolean> packPresent = new HashMap<>();
  private final List<PendingChunk> newChunks = new ArrayList<>();
  // New chunks are compressed and appended to packs on a thread of their own, in the order they
  // come, while this one goes on inflating, parsing and hashing: on two cores that overlaps the
  // two halves of an import. At most MAX_QUEUED chunks (copies) wait for it.
  private static final int MAX_QUEUED = 64;
  private final java.util.concurrent.ExecutorService packer =
      java.util.concurrent.Executors.newSingleThreadExecutor(
          r -> Thread.ofPlatform().daemon().name("skiff-import-pack").unstarted(r));
  private final java.util.concurrent.Semaphore queued =
      new java.util.concurrent.Semaphore(MAX_QUEUED);
  private volatile IOException packFailed;
  // the pack thread's alone
  private PackWriter pack;
  private PackSlot packSlot;

  long logicalBytes;
  long newStoredBytes;
  long chunkRefs;
  long newChunkCount;

  ChunkWriter(
      BlobStore store,
      ChunkCatalog catalog,
      DigestAlgorithm algorithm,
      int chunkSize,
      int inlineLimit,
      long packTarget,
      int zstdLevel,
      Path scratch) {
    this.store = store;
    this.catalog = catalog;
    this.algorithm = algorithm;
    this.chunkSize = chunkSize;
    this.inlineLimit = inlineLimit;
    this.packTarget = packTarget;
    this.zstdLevel = zstdLevel;
    this.scratch = scratch;
    this.buf = new byte[chunkSize];
  }

  /** Reads exactly {@code size} bytes of one file and records them in {@code node}. */
  void write(Node node, InputStream in, long size, String source, String path) throws IOException {
    node.size = size;
    logicalBytes += size;
    if (size <= inlineLimit) {
      byte[] data = new byte[(int) size];
      readFully(in, data, (int) size, source, path);
      node.inline = data;
      node.chunks = List.of();
      return;
    }
    List<PendingChunk> chunks = new ArrayList<>(); // not sized from the header: it is only a claim
    long left = size;
    while (left > 0) {
      int n = (int) Math.min(chunkSize, left);
      readFully(in, buf, n, source, path);
      chunks.add(chunk(buf, n));
      left -= n;
    }
    node.inline = null;
    node.chunks = chunks;
  }

  private PendingChunk chunk(byte[] data, int n) throws IOException {
    chunkRefs++;
    Digest d = algorithm.digest(data, 0, n);
    PendingChunk known = seen.get(d);
    if (known != null) {
      return known;
    }
    ChunkLocation loc = catalog.find(d);
    if (loc != null && packPresent(loc.pack())) {
      PackSlot slot =
          storedPacks.computeIfAbsent(
              loc.pack(),
              p -> {
                PackSlot s = new PackSlot();
                s.name = p;
                return s;
              });
      PendingChunk c =
          new PendingChunk(
              d, slot, loc.offset(), loc.storedLength(), loc.plainLength(), loc.codec());
      seen.put(d, c);
      return c;
    }
    throwIfPackFailed();
    PendingChunk c = new PendingChunk(d, n);
    seen.put(d, c);
    newChunks.add(c);
    newChunkCount++;
    byte[] copy = java.util.Arrays.copyOf(data, n);
    try {
      queued.acquire();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted importing");
    }
    packer.execute(
        () -> {
          try {
            if (packFailed == null) {
              append(c, copy);
            }
          } catch (IOException | RuntimeException e) {
            packFailed = e instanceof IOException io ? io : new IOException(e);
          } finally {
            queued.release();
          }
        });
    return c;
  }

  /** On the pack thread: compresses and appends one chunk, sealing a full pack. */
  private void append(PendingChunk c, byte[] data) throws IOException {
    if (pack == null) {
      pack = new PackWriter(algorithm, scratch, zstdLevel);
      packSlot = new PackSlot();
    }
    PackWriter.Appended a = pack.append(c.digest, data, data.length);
    c.pack = packSlot;
    c.offset = a.offset();
    c.storedLength = a.storedLength();
    c.codec = a.codec();
    newStoredBytes += a.storedLength();
    if (pack.size() >= packTarget) {
      sealPack();
    }
  }

  private void throwIfPackFailed() throws IOException {
    IOException e = packFailed;
    if (e != null) {
      throw e;
    }
  }

  /** Runs {@code task} on the pack thread after every chunk queued before it, and waits. */
  private void onPackThread(java.util.concurrent.Callable<Void> task) throws IOException {
    try {
      packer.submit(task).get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted importing");
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof IOException io) {
        throw io;
      }
      throw new IOException(e.getCause());
    }
  }

  /**
   * Whether a pack the catalog names is still in the store (asked once per pack per import): a
   * chunk whose pack was lost is stored again, never deduplicated against what is gone.
   */
  private boolean packPresent(String pack) throws IOException {
    Boolean present = packPresent.get(pack);
    if (present == null) {
      present = store.exists(pack);
      packPresent.put(pack, present);
    }
    return present;
  }

  private void sealPack() throws IOException {
    packSlot.name = pack.seal(store);
    pack = null;
    packSlot = null;
  }

  /** Seals the open pack and returns the locations of every chunk this writer added. */
  List<ChunkLocation> finish() throws IOException {
    onPackThread(
        () -> {
          if (packFailed == null && pack != null) {
            sealPack();
          }
          return null;
        });
    throwIfPackFailed();
    List<ChunkLocation> out = new ArrayList<>(newChunks.size());
    for (PendingChunk c : newChunks) {
      out.add(c.location());
    }
    return out;
  }

  private static void readFully(InputStream in, byte[] b, int n, String source, String path)
      throws IOException {
    int off = 0;
    while (off < n) {
      int r = in.read(b, off, n - off);
      if (r < 0) {
        throw new ImportException(source, path, "file content ends early (archive truncated?)");
      }
      off += r;
    }
  }

  @Override
  public void close() throws IOException {
    if (packer.isShutdown()) {
      return;
    }
    try {
      onPackThread(
          () -> {
            if (pack != null) {
              pack.close();
              pack = null;
            }
            return null;
          });
    } finally {
      packer.shutdownNow();
    }
  }
}
