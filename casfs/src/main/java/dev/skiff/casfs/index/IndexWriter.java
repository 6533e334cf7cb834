package dev.skiff.casfs.index;

import static java.nio.charset.StandardCharsets.UTF_8;

import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.pack.ChunkLocation;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.lmdbjava.CopyFlags;
import org.lmdbjava.Dbi;
import org.lmdbjava.DbiFlags;
import org.lmdbjava.Env;
import org.lmdbjava.EnvFlags;
import org.lmdbjava.Txn;

/**
 * Writes an image index (see {@link IndexFormat}) into a scratch LMDB file, then compacts it into
 * its final file. Writing the same image twice gives the same bytes, so the index's digest names
 * its contents. Not thread safe.
 */
public final class IndexWriter implements AutoCloseable {
  private static final int COMMIT_EVERY = 200_000;

  private final Path scratch;
  private final Env<ByteBuffer> env;
  private final Map<String, Dbi<ByteBuffer>> dbs = new HashMap<>();
  private final Map<String, Integer> packs = new HashMap<>();
  private final ByteBuffer key = ByteBuffer.allocateDirect(600);
  private final ByteBuffer val = ByteBuffer.allocateDirect(1 << 16);
  private final DigestAlgorithm algorithm;
  private Txn<ByteBuffer> txn;
  private int puts;
  private boolean closed;

  public IndexWriter(Path scratchDir, DigestAlgorithm algorithm, int chunkSize) throws IOException {
    Files.createDirectories(scratchDir);
    this.scratch = Files.createTempFile(scratchDir, "index-", ".mdb");
    this.algorithm = algorithm;
    Env<ByteBuffer> e =
        Env.create()
            .setMapSize(64L << 30)
            .setMaxDbs(IndexFormat.DBS.length)
            .open(
                scratch.toFile(), EnvFlags.MDB_NOSUBDIR, EnvFlags.MDB_NOSYNC, EnvFlags.MDB_NOLOCK);
    this.env = e;
    try {
      for (String name : IndexFormat.DBS) {
        dbs.put(name, e.openDbi(name, DbiFlags.MDB_CREATE));
      }
      txn = e.txnWrite();
      putMeta("format", Integer.toString(IndexFormat.VERSION));
      putMeta("digest", algorithm.label());
      putMeta("chunk-size", Integer.toString(chunkSize));
    } catch (RuntimeException ex) {
      close();
      throw ex;
    }
  }

  public void putMeta(String k, String v) {
    put("meta", key.clear().put(k.getBytes(UTF_8)).flip(), bytes(v.getBytes(UTF_8)));
  }

  public void putInode(Inode n) {
    val.clear()
        .putInt(n.mode())
        .putInt(n.uid())
        .putInt(n.gid())
        .putInt(n.nlink())
        .putLong(n.size())
        .putLong(n.mtimeSeconds())
        .putInt(n.mtimeNanos())
        .putInt(n.inline() ? Inode.FLAG_INLINE : 0)
        .putLong(n.rdev())
        .putInt(n.chunkCount())
        .flip();
    put("inode", key.clear().putLong(n.ino()).flip(), val);
  }

  /** Adds directory entry number {@code position} (0-based, in name order) of {@code parent}. */
  public void putDirent(long parent, int position, byte[] name, long child) {
    if (name.length == 0 || name.length > 255) {
      throw new IllegalArgumentException("name of " + name.length + " bytes (want 1..255)");
    }
    put("dirent", key.clear().putLong(parent).put(name).flip(), val.clear().putLong(child).flip());
    put(
        "dirlist",
        key.clear().putLong(parent).putInt(position).flip(),
        val.clear().putLong(child).put(name).flip());
  }

  public void putXattr(long ino, byte[] name, byte[] value) {
    put("xattr", key.clear().putLong(ino).put(name).flip(), bytes(value));
  }

  public void putData(long ino, byte[] data) {
    put("data", key.clear().putLong(ino).flip(), bytes(data));
  }

  public void putChunk(long ino, int index, ChunkLocation loc) {
    if (loc.digest().algorithm() != algorithm) {
      throw new IllegalArgumentException(
          "chunk digest " + loc.digest() + " is not " + algorithm.label());
    }
    Integer pack = packs.get(loc.pack());
    if (pack == null) {
      pack = packs.size();
      packs.put(loc.pack(), pack);
      put("pack", key.clear().putInt(pack).flip(), bytes(loc.pack().getBytes(UTF_8)));
    }
    val.clear()
        .put(loc.digest().bytes())
        .putInt(pack)
        .putLong(loc.offset())
        .putInt(loc.storedLength())
        .putInt(loc.plainLength())
        .put((byte) loc.codec().id())
        .flip();
    put("chunk", key.clear().putLong(ino).putInt(index).flip(), val);
  }

  private ByteBuffer bytes(byte[] b) {
    if (b.length <= val.capacity()) {
      return val.clear().put(b).flip();
    }
    return ByteBuffer.allocateDirect(b.length).put(b).flip();
  }

  private void put(String db, ByteBuffer k, ByteBuffer v) {
    if (closed) {
      throw new IllegalStateException("index writer is closed");
    }
    dbs.get(db).put(txn, k, v);
    if (++puts % COMMIT_EVERY == 0) {
      txn.commit();
      txn.close();
      txn = env.txnWrite();
    }
  }

  /** Commits and writes the compacted index to {@code target}, which must not exist yet. */
  public void finish(Path target) throws IOException {
    txn.commit();
    txn.close();
    txn = null;
    Files.deleteIfExists(target);
    env.copy(target.toFile(), CopyFlags.MDB_CP_COMPACT);
    close();
  }

  /**
   * Writes to {@code target} (which must not exist yet) a compacted copy of index {@code source}
   * with {@code meta} entries set, everything else as it is: a new image that differs from another
   * only in its config costs an index, not an import.
   */
  public static void withMeta(Path source, Path scratchDir, Map<String, String> meta, Path target)
      throws IOException {
    Path tmp = Files.createTempFile(scratchDir, "index-", ".mdb");
    try {
      Files.copy(source, tmp, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      Env<ByteBuffer> e =
          Env.create()
              .setMapSize(64L << 30)
              .setMaxDbs(IndexFormat.DBS.length)
              .open(tmp.toFile(), EnvFlags.MDB_NOSUBDIR, EnvFlags.MDB_NOSYNC, EnvFlags.MDB_NOLOCK);
      try {
        Dbi<ByteBuffer> db = e.openDbi("meta");
        try (Txn<ByteBuffer> t = e.txnWrite()) {
          for (Map.Entry<String, String> m : meta.entrySet()) {
            byte[] k = m.getKey().getBytes(UTF_8);
            byte[] v = m.getValue().getBytes(UTF_8);
            db.put(
                t,
                ByteBuffer.allocateDirect(k.length).put(k).flip(),
                ByteBuffer.allocateDirect(v.length).put(v).flip());
          }
          t.commit();
        }
        e.copy(target.toFile(), CopyFlags.MDB_CP_COMPACT);
      } finally {
        e.close();
      }
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /** Discards the scratch file. Idempotent. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    if (txn != null) {
      txn.abort();
      txn.close();
      txn = null;
    }
    env.close();
    Files.deleteIfExists(scratch);
  }
}
