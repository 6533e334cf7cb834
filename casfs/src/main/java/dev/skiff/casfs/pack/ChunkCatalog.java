package dev.skiff.casfs.pack;

import static java.nio.charset.StandardCharsets.UTF_8;

import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import org.lmdbjava.Dbi;
import org.lmdbjava.DbiFlags;
import org.lmdbjava.Env;
import org.lmdbjava.Txn;

/**
 * Which chunks a store already holds, and where: digest -> pack range. This is what makes an import
 * skip chunks the store has. It is a local, derived view: every entry comes from a pack's {@code
 * .idx} blob, and {@link #rebuild} recreates it from the store.
 *
 * <p>One LMDB environment in a directory. Thread safe (LMDB serialises writers).
 */
public final class ChunkCatalog implements AutoCloseable {
  private final Env<ByteBuffer> env;
  private final Dbi<ByteBuffer> chunks;
  private final DigestAlgorithm algorithm;
  private volatile boolean closed;

  private ChunkCatalog(Env<ByteBuffer> env, Dbi<ByteBuffer> chunks, DigestAlgorithm algorithm) {
    this.env = env;
    this.chunks = chunks;
    this.algorithm = algorithm;
  }

  /** Opens (creating if needed) the catalog in {@code dir}. */
  public static ChunkCatalog open(Path dir, DigestAlgorithm algorithm) throws IOException {
    Files.createDirectories(dir);
    Env<ByteBuffer> env =
        Env.create().setMapSize(16L << 30).setMaxDbs(2).setMaxReaders(256).open(dir.toFile());
    try {
      Dbi<ByteBuffer> chunks = env.openDbi("chunks", DbiFlags.MDB_CREATE);
      return new ChunkCatalog(env, chunks, algorithm);
    } catch (RuntimeException e) {
      env.close();
      throw e;
    }
  }

  /** Where the store holds the chunk with this digest, or null if it does not. */
  public ChunkLocation find(Digest digest) {
    ensureOpen();
    ByteBuffer key =
        ByteBuffer.allocateDirect(digest.algorithm().length()).put(digest.bytes()).flip();
    try (Txn<ByteBuffer> txn = env.txnRead()) {
      ByteBuffer v = chunks.get(txn, key);
      return v == null ? null : decode(digest, v);
    }
  }

  /** Records chunks that the store now holds (their packs already stored). */
  public void addAll(Collection<ChunkLocation> locations) {
    ensureOpen();
    ByteBuffer key = ByteBuffer.allocateDirect(algorithm.length());
    ByteBuffer val = ByteBuffer.allocateDirect(1024);
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      for (ChunkLocation loc : locations) {
        key.clear().put(loc.digest().bytes()).flip();
        byte[] pack = loc.pack().getBytes(UTF_8);
        val.clear()
            .putShort((short) pack.length)
            .put(pack)
            .putLong(loc.offset())
            .putInt(loc.storedLength())
            .putInt(loc.plainLength())
            .put((byte) loc.codec().id())
            .flip();
        chunks.put(txn, key, val);
      }
      txn.commit();
    }
  }

  /** The pack an entry's value names (the value stays unread for the caller). */
  private static String packOf(ByteBuffer v) {
    byte[] pack = new byte[v.getShort(v.position()) & 0xffff];
    v.get(v.position() + 2, pack);
    return new String(pack, UTF_8);
  }

  /** Forgets every chunk held in one of {@code packs} (packs being deleted); returns how many. */
  public long removePacks(java.util.Set<String> packs) {
    ensureOpen();
    java.util.List<byte[]> doomed = new java.util.ArrayList<>();
    try (Txn<ByteBuffer> txn = env.txnRead();
        org.lmdbjava.Cursor<ByteBuffer> c = chunks.openCursor(txn)) {
      for (boolean more = c.first(); more; more = c.next()) {
        if (packs.contains(packOf(c.val()))) {
          byte[] key = new byte[c.key().remaining()];
          c.key().duplicate().get(key);
          doomed.add(key);
        }
      }
    }
    ByteBuffer key = ByteBuffer.allocateDirect(algorithm.length());
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      for (byte[] k : doomed) {
        chunks.delete(txn, key.clear().put(k).flip());
      }
      txn.commit();
    }
    return doomed.size();
  }

  /** The distinct pack names the catalog places chunks in (one pass over every entry). */
  public java.util.Set<String> packs() {
    ensureOpen();
    java.util.Set<String> out = new java.util.HashSet<>();
    try (Txn<ByteBuffer> txn = env.txnRead();
        org.lmdbjava.Cursor<ByteBuffer> c = chunks.openCursor(txn)) {
      for (boolean more = c.first(); more; more = c.next()) {
        out.add(packOf(c.val()));
      }
    }
    return out;
  }

  /** Forgets single chunks (found corrupt in their pack); returns how many were known. */
  public long remove(Collection<Digest> digests) {
    ensureOpen();
    long n = 0;
    ByteBuffer key = ByteBuffer.allocateDirect(algorithm.length());
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      for (Digest d : digests) {
        if (chunks.delete(txn, key.clear().put(d.bytes()).flip())) {
          n++;
        }
      }
      txn.commit();
    }
    return n;
  }

  /** Number of chunks known. */
  public long size() {
    ensureOpen();
    try (Txn<ByteBuffer> txn = env.txnRead()) {
      return chunks.stat(txn).entries;
    }
  }

  /** Re-reads every pack index in {@code store}; returns the number of chunks catalogued. */
  public long rebuild(BlobStore store) throws IOException {
    long n = 0;
    for (String name : store.list(BlobNames.PACKS)) {
      if (BlobNames.isChunkList(name)) {
        long size = store.size(name).orElseThrow();
        ByteBuffer b = store.readFully(name, 0, Math.toIntExact(size));
        var locs = PackWriter.decodeIndex(BlobNames.packOf(name), b.array());
        addAll(locs);
        n += locs.size();
      }
    }
    return n;
  }

  private static ChunkLocation decode(Digest digest, ByteBuffer v) {
    byte[] pack = new byte[v.getShort() & 0xffff];
    v.get(pack);
    long offset = v.getLong();
    int stored = v.getInt();
    int plain = v.getInt();
    Codec codec = Codec.of(v.get());
    return new ChunkLocation(digest, new String(pack, UTF_8), offset, stored, plain, codec);
  }

  private void ensureOpen() {
    if (closed) {
      throw new IllegalStateException("chunk catalog is closed");
    }
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      env.close();
    }
  }
}
