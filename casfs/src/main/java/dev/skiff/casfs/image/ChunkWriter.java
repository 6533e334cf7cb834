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
 * the index instead. Not thread safe: one import drives one writer.
 */
final class ChunkWriter implements AutoCloseable {
  /** A pack whose blob name is known once it is sealed (at once for packs already stored). */
  static final class PackSlot {
    String name;
  }

  /** A chunk of an imported file: known digest and range, pack name possibly still pending. */
  record PendingChunk(
      Digest digest, PackSlot pack, long offset, int storedLength, int plainLength, Codec codec) {
    ChunkLocation location() {
      if (pack.name == null) {
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
    if (pack == null) {
      pack = new PackWriter(algorithm, scratch, zstdLevel);
      packSlot = new PackSlot();
    }
    PackWriter.Appended a = pack.append(d, data, n);
    PendingChunk c = new PendingChunk(d, packSlot, a.offset(), a.storedLength(), n, a.codec());
    seen.put(d, c);
    newChunks.add(c);
    newChunkCount++;
    newStoredBytes += a.storedLength();
    if (pack.size() >= packTarget) {
      sealPack();
    }
    return c;
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
    if (pack != null) {
      sealPack();
    }
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
    if (pack != null) {
      pack.close();
      pack = null;
    }
  }
}
