package dev.skiff.casfs.pack;

import com.github.luben.zstd.Zstd;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Appends chunks to a pack file in a scratch directory, then stores it in a blob store under a name
 * derived from its contents. Chunks are zstd-compressed when that saves at least an eighth.
 *
 * <p>A pack's digest is the digest of its {@code .idx} blob, which lists every chunk's digest,
 * offset and lengths, so the name pins the contents without hashing the pack's bytes again. The
 * pack is stored before its {@code .idx}; a pack without an index is an orphan that gc may remove.
 * Not thread safe.
 */
public final class PackWriter implements AutoCloseable {
  private static final int IDX_MAGIC = 0x534b5049; // "SKPI"
  private static final int IDX_VERSION = 1;

  private final DigestAlgorithm algorithm;
  private final Path file;
  private final FileChannel out;
  private final int zstdLevel;
  private final List<Entry> entries = new ArrayList<>();
  private long size;
  private boolean closed;

  private record Entry(Digest digest, long offset, int stored, int plain, Codec codec) {}

  public PackWriter(DigestAlgorithm algorithm, Path scratchDir, int zstdLevel) throws IOException {
    this.algorithm = algorithm;
    this.zstdLevel = zstdLevel;
    Files.createDirectories(scratchDir);
    this.file = Files.createTempFile(scratchDir, "pack-", ".tmp");
    this.out = FileChannel.open(file, StandardOpenOption.WRITE);
  }

  /** Bytes written so far. */
  public long size() {
    return size;
  }

  public int chunkCount() {
    return entries.size();
  }

  /**
   * Appends one chunk (its digest already computed) and returns its offset, stored length and
   * codec. The pack name is not known until {@link #seal}.
   */
  public Appended append(Digest digest, byte[] plain, int length) throws IOException {
    byte[] stored = plain;
    int storedLength = length;
    Codec codec = Codec.NONE;
    if (zstdLevel > 0 && length >= 512) {
      byte[] z = new byte[(int) Zstd.compressBound(length)];
      long n = Zstd.compressByteArray(z, 0, z.length, plain, 0, length, zstdLevel);
      if (!Zstd.isError(n) && n <= length - length / 8) {
        stored = z;
        storedLength = (int) n;
        codec = Codec.ZSTD;
      }
    }
    long offset = size;
    ByteBuffer b = ByteBuffer.wrap(stored, 0, storedLength);
    while (b.hasRemaining()) {
      out.write(b);
    }
    size += storedLength;
    entries.add(new Entry(digest, offset, storedLength, length, codec));
    return new Appended(offset, storedLength, codec);
  }

  /** Appends a chunk exactly as another pack stores it (repacking: no recompression). */
  public Appended appendStored(Digest digest, byte[] stored, int plainLength, Codec codec)
      throws IOException {
    long offset = size;
    ByteBuffer b = ByteBuffer.wrap(stored);
    while (b.hasRemaining()) {
      out.write(b);
    }
    size += stored.length;
    entries.add(new Entry(digest, offset, stored.length, plainLength, codec));
    return new Appended(offset, stored.length, codec);
  }

  /** Offset, stored length and codec of an appended chunk. */
  public record Appended(long offset, int storedLength, Codec codec) {}

  /**
   * Stores the pack and its index in {@code store} and returns the pack's blob name. The scratch
   * file is removed.
   */
  public String seal(BlobStore store) throws IOException {
    if (closed) {
      throw new IllegalStateException("pack already sealed or closed");
    }
    out.force(true);
    out.close();
    closed = true;
    byte[] idx = encodeIndex();
    Digest d = algorithm.digest(idx);
    String name = BlobNames.pack(d);
    try {
      if (!store.exists(name)) {
        store.putFile(name, file);
      }
      if (!store.exists(BlobNames.packIndex(d))) {
        store.put(BlobNames.packIndex(d), new ByteArrayInputStream(idx));
      }
    } finally {
      Files.deleteIfExists(file);
    }
    return name;
  }

  private byte[] encodeIndex() throws IOException {
    ByteArrayOutputStream bos = new ByteArrayOutputStream(16 + entries.size() * 64);
    DataOutputStream d = new DataOutputStream(bos);
    d.writeInt(IDX_MAGIC);
    d.writeInt(IDX_VERSION);
    d.writeUTF(algorithm.label());
    d.writeInt(entries.size());
    for (Entry e : entries) {
      d.write(e.digest.bytes());
      d.writeLong(e.offset);
      d.writeInt(e.stored);
      d.writeInt(e.plain);
      d.writeByte(e.codec.id());
    }
    d.flush();
    return bos.toByteArray();
  }

  /** Reads a pack's {@code .idx} blob back into chunk locations. */
  public static List<ChunkLocation> decodeIndex(String packName, byte[] idx) throws IOException {
    var in = new java.io.DataInputStream(new ByteArrayInputStream(idx));
    if (in.readInt() != IDX_MAGIC || in.readInt() != IDX_VERSION) {
      throw new IOException("not a pack index (bad magic or version): " + packName + ".idx");
    }
    DigestAlgorithm algorithm = DigestAlgorithm.fromLabel(in.readUTF());
    int n = in.readInt();
    int entry = algorithm.length() + 8 + 4 + 4 + 1;
    if (n < 0 || (long) n * entry > idx.length) {
      throw new IOException(
          "pack index "
              + packName
              + ".idx is damaged: it claims "
              + n
              + " chunks in "
              + idx.length
              + " bytes");
    }
    List<ChunkLocation> out = new ArrayList<>(n);
    byte[] db = new byte[algorithm.length()];
    for (int i = 0; i < n; i++) {
      in.readFully(db);
      long offset = in.readLong();
      int stored = in.readInt();
      int plain = in.readInt();
      Codec codec = Codec.of(in.readByte());
      out.add(new ChunkLocation(new Digest(algorithm, db), packName, offset, stored, plain, codec));
    }
    return out;
  }

  /** Abandons an unsealed pack, removing its scratch file. Idempotent. */
  @Override
  public void close() throws IOException {
    if (!closed) {
      closed = true;
      out.close();
    }
    Files.deleteIfExists(file);
  }
}
