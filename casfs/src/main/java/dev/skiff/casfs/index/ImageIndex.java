package dev.skiff.casfs.index;

import static java.nio.charset.StandardCharsets.UTF_8;

import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.pack.ChunkLocation;
import dev.skiff.casfs.pack.Codec;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.lmdbjava.Cursor;
import org.lmdbjava.CursorIterable;
import org.lmdbjava.CursorIterable.KeyVal;
import org.lmdbjava.Dbi;
import org.lmdbjava.Env;
import org.lmdbjava.EnvFlags;
import org.lmdbjava.GetOp;
import org.lmdbjava.Txn;

/**
 * A read-only view of an image index file (see {@link IndexFormat}): memory mapped, so a lookup is
 * a B-tree walk in the page cache. Opening costs the same whatever the image's size.
 *
 * <p>Thread safe. Each calling thread keeps one read transaction for the life of the index (the
 * file never changes, and it is opened without LMDB's lock table); values are copied out before a
 * method returns, so nothing returned points into the map. "Not found" is a null or zero return.
 */
public final class ImageIndex implements AutoCloseable {
  private enum State {
    OPEN,
    CLOSED
  }

  private final Path file;
  private final Env<ByteBuffer> env;
  private final Dbi<ByteBuffer> inode;
  private final Dbi<ByteBuffer> dirent;
  private final Dbi<ByteBuffer> dirlist;
  private final Dbi<ByteBuffer> xattr;
  private final Dbi<ByteBuffer> chunk;
  private final Dbi<ByteBuffer> data;
  private final Dbi<ByteBuffer> meta;
  private final String[] packs;
  private final DigestAlgorithm algorithm;
  private final int chunkSize;
  private final boolean hasXattrs;
  private final long inodeCount;
  private final ThreadLocal<Reader> readers;
  private final ConcurrentLinkedQueue<Reader> allReaders = new ConcurrentLinkedQueue<>();
  private volatile State state = State.OPEN;

  private final class Reader {
    final Txn<ByteBuffer> txn = env.txnRead();
    final ByteBuffer key = ByteBuffer.allocateDirect(600);
  }

  private ImageIndex(Path file) throws IOException {
    this.file = file;
    IndexVerifier.checkStructure(file); // LMDB trusts the file: a truncated one would fault the JVM
    long size = Files.size(file);
    this.env =
        Env.create()
            .setMaxDbs(IndexFormat.DBS.length)
            .setMapSize(Math.max(size, 1 << 20))
            .setMaxReaders(4096)
            .open(
                file.toFile(),
                EnvFlags.MDB_NOSUBDIR,
                EnvFlags.MDB_RDONLY_ENV,
                EnvFlags.MDB_NOLOCK,
                EnvFlags.MDB_NOTLS);
    try {
      inode = env.openDbi("inode");
      dirent = env.openDbi("dirent");
      dirlist = env.openDbi("dirlist");
      xattr = env.openDbi("xattr");
      chunk = env.openDbi("chunk");
      data = env.openDbi("data");
      meta = env.openDbi("meta");
      Dbi<ByteBuffer> pack = env.openDbi("pack");
      readers =
          ThreadLocal.withInitial(
              () -> {
                Reader r = new Reader();
                allReaders.add(r);
                return r;
              });
      Reader r = readers.get();
      if (!Integer.toString(IndexFormat.VERSION).equals(metaIn(r, "format"))) {
        throw new IOException(
            file + " is an image index of an unknown format " + metaIn(r, "format"));
      }
      algorithm = DigestAlgorithm.fromLabel(metaIn(r, "digest"));
      chunkSize = Integer.parseInt(metaIn(r, "chunk-size"));
      List<String> names = new ArrayList<>();
      try (CursorIterable<ByteBuffer> it = pack.iterate(r.txn)) {
        for (KeyVal<ByteBuffer> kv : it) {
          names.add(UTF_8.decode(kv.val()).toString());
        }
      }
      packs = names.toArray(String[]::new);
      hasXattrs = xattr.stat(r.txn).entries > 0;
      inodeCount = inode.stat(r.txn).entries;
    } catch (IOException | RuntimeException e) {
      closeReaders();
      env.close();
      throw new IOException("cannot read image index " + file + ": " + e.getMessage(), e);
    }
  }

  /**
   * Opens an index file read-only after checking its structure (see {@link
   * IndexVerifier#checkStructure}); {@code ImageStore.openIndex} also checks it against its digest.
   */
  public static ImageIndex open(Path file) throws IOException {
    return new ImageIndex(file);
  }

  public static final long ROOT = IndexFormat.ROOT;

  public Path file() {
    return file;
  }

  public DigestAlgorithm algorithm() {
    return algorithm;
  }

  public int chunkSize() {
    return chunkSize;
  }

  public long inodeCount() {
    return inodeCount;
  }

  /** Whether any inode has extended attributes. */
  public boolean hasXattrs() {
    return hasXattrs;
  }

  private Reader reader() {
    if (state != State.OPEN) {
      throw new IllegalStateException("image index " + file + " is closed");
    }
    return readers.get();
  }

  /** The inode, or null if there is none with that number. */
  public Inode inode(long ino) {
    Reader r = reader();
    ByteBuffer v = inode.get(r.txn, r.key.clear().putLong(ino).flip());
    return v == null ? null : decodeInode(ino, v);
  }

  private static Inode decodeInode(long ino, ByteBuffer v) {
    int mode = v.getInt();
    int uid = v.getInt();
    int gid = v.getInt();
    int nlink = v.getInt();
    long size = v.getLong();
    long mtime = v.getLong();
    int nanos = v.getInt();
    int flags = v.getInt();
    long rdev = v.getLong();
    int chunks = v.getInt();
    return new Inode(
        ino,
        mode,
        uid,
        gid,
        nlink,
        size,
        mtime,
        nanos,
        rdev,
        chunks,
        (flags & Inode.FLAG_INLINE) != 0);
  }

  /** The inode number of {@code name} in directory {@code parent}, or 0 if there is none. */
  public long lookup(long parent, byte[] name) {
    if (name.length == 0 || name.length > 255) {
      return 0;
    }
    Reader r = reader();
    ByteBuffer v = dirent.get(r.txn, r.key.clear().putLong(parent).put(name).flip());
    return v == null ? 0 : v.getLong();
  }

  /** Resolves a slash-separated path from the root without following symlinks; 0 if absent. */
  public long resolve(String path) {
    long ino = ROOT;
    for (String part : path.split("/")) {
      if (part.isEmpty() || part.equals(".")) {
        continue;
      }
      ino = lookup(ino, part.getBytes(UTF_8));
      if (ino == 0) {
        return 0;
      }
    }
    return ino;
  }

  /** Receives directory entries; return false to stop. */
  @FunctionalInterface
  public interface EntryVisitor {
    boolean visit(int position, byte[] name, long ino);
  }

  /** Visits the entries of directory {@code dir} from {@code position} on, in name order. */
  public void list(long dir, int position, EntryVisitor visitor) {
    Reader r = reader();
    ByteBuffer start = r.key.clear().putLong(dir).putInt(position).flip();
    try (Cursor<ByteBuffer> c = dirlist.openCursor(r.txn)) {
      // Walk the cursor and check the parent ourselves: keys are big-endian (parent, position).
      for (boolean ok = c.get(start, GetOp.MDB_SET_RANGE); ok; ok = c.next()) {
        ByteBuffer k = c.key().order(ByteOrder.BIG_ENDIAN);
        if (k.remaining() != 12 || k.getLong(0) != dir) {
          return;
        }
        ByteBuffer v = c.val().order(ByteOrder.BIG_ENDIAN);
        long ino = v.getLong();
        byte[] name = new byte[v.remaining()];
        v.get(name);
        if (!visitor.visit(k.getInt(8), name, ino)) {
          return;
        }
      }
    }
  }

  /** A symlink's target or an inline file's bytes; null if the inode has none. */
  public byte[] data(long ino) {
    Reader r = reader();
    ByteBuffer v = data.get(r.txn, r.key.clear().putLong(ino).flip());
    if (v == null) {
      return null;
    }
    byte[] out = new byte[v.remaining()];
    v.get(out);
    return out;
  }

  /** Where chunk {@code index} of a regular file lies, or null. */
  public ChunkLocation chunk(long ino, int index) {
    Reader r = reader();
    ByteBuffer v = chunk.get(r.txn, r.key.clear().putLong(ino).putInt(index).flip());
    if (v == null) {
      return null;
    }
    byte[] d = new byte[algorithm.length()];
    v.get(d);
    int pack = v.getInt();
    long offset = v.getLong();
    int stored = v.getInt();
    int plain = v.getInt();
    Codec codec = Codec.of(v.get());
    return new ChunkLocation(new Digest(algorithm, d), packs[pack], offset, stored, plain, codec);
  }

  /** The value of an extended attribute, or null. */
  public byte[] xattr(long ino, byte[] name) {
    if (!hasXattrs || name.length == 0 || name.length > 255) {
      return null;
    }
    Reader r = reader();
    ByteBuffer v = xattr.get(r.txn, r.key.clear().putLong(ino).put(name).flip());
    if (v == null) {
      return null;
    }
    byte[] out = new byte[v.remaining()];
    v.get(out);
    return out;
  }

  /** Extended attribute names of an inode, in byte order. */
  public List<byte[]> xattrNames(long ino) {
    List<byte[]> out = new ArrayList<>();
    if (!hasXattrs) {
      return out;
    }
    Reader r = reader();
    ByteBuffer start = r.key.clear().putLong(ino).flip();
    try (Cursor<ByteBuffer> c = xattr.openCursor(r.txn)) {
      for (boolean ok = c.get(start, GetOp.MDB_SET_RANGE); ok; ok = c.next()) {
        ByteBuffer k = c.key().order(ByteOrder.BIG_ENDIAN);
        if (k.remaining() <= 8 || k.getLong(0) != ino) {
          break;
        }
        byte[] name = new byte[k.remaining() - 8];
        k.get(8, name);
        out.add(name);
      }
    }
    return out;
  }

  /** A metadata value (config, source, stats), or null. */
  public String meta(String key) {
    return metaIn(reader(), key);
  }

  private String metaIn(Reader r, String key) {
    ByteBuffer v = meta.get(r.txn, r.key.clear().put(key.getBytes(UTF_8)).flip());
    return v == null ? null : UTF_8.decode(v).toString();
  }

  /** All pack blob names this image's chunks live in. */
  public List<String> packs() {
    return List.of(packs);
  }

  /** Every chunk location of every file, for statistics and tools. */
  public Map<Digest, ChunkLocation> allChunks() {
    Reader r = reader();
    Map<Digest, ChunkLocation> out = new HashMap<>();
    try (CursorIterable<ByteBuffer> it = chunk.iterate(r.txn)) {
      for (KeyVal<ByteBuffer> kv : it) {
        ByteBuffer v = kv.val();
        byte[] d = new byte[algorithm.length()];
        v.get(d);
        Digest digest = new Digest(algorithm, d);
        out.computeIfAbsent(
            digest,
            x ->
                new ChunkLocation(
                    x, packs[v.getInt()], v.getLong(), v.getInt(), v.getInt(), Codec.of(v.get())));
      }
    }
    return out;
  }

  /**
   * Writes this whole index into {@code w}, every chunk location passed through {@code remap}
   * (repacking moves chunks; everything else is copied as it is).
   */
  public void copyTo(IndexWriter w, java.util.function.UnaryOperator<ChunkLocation> remap) {
    Reader r = reader();
    try (CursorIterable<ByteBuffer> it = inode.iterate(r.txn)) {
      for (KeyVal<ByteBuffer> kv : it) {
        long ino = kv.key().order(ByteOrder.BIG_ENDIAN).getLong(0);
        w.putInode(decodeInode(ino, kv.val().order(ByteOrder.BIG_ENDIAN)));
      }
    }
    try (CursorIterable<ByteBuffer> it = dirlist.iterate(r.txn)) {
      for (KeyVal<ByteBuffer> kv : it) {
        ByteBuffer k = kv.key().order(ByteOrder.BIG_ENDIAN);
        ByteBuffer v = kv.val().order(ByteOrder.BIG_ENDIAN);
        long child = v.getLong();
        byte[] name = new byte[v.remaining()];
        v.get(name);
        w.putDirent(k.getLong(0), k.getInt(8), name, child);
      }
    }
    try (CursorIterable<ByteBuffer> it = xattr.iterate(r.txn)) {
      for (KeyVal<ByteBuffer> kv : it) {
        ByteBuffer k = kv.key().order(ByteOrder.BIG_ENDIAN);
        byte[] name = new byte[k.remaining() - 8];
        k.get(8, name);
        byte[] value = new byte[kv.val().remaining()];
        kv.val().get(value);
        w.putXattr(k.getLong(0), name, value);
      }
    }
    try (CursorIterable<ByteBuffer> it = data.iterate(r.txn)) {
      for (KeyVal<ByteBuffer> kv : it) {
        byte[] value = new byte[kv.val().remaining()];
        kv.val().get(value);
        w.putData(kv.key().order(ByteOrder.BIG_ENDIAN).getLong(0), value);
      }
    }
    try (CursorIterable<ByteBuffer> it = chunk.iterate(r.txn)) {
      for (KeyVal<ByteBuffer> kv : it) {
        ByteBuffer k = kv.key().order(ByteOrder.BIG_ENDIAN);
        long ino = k.getLong(0);
        int idx = k.getInt(8);
        w.putChunk(ino, idx, remap.apply(chunk(ino, idx)));
      }
    }
    try (CursorIterable<ByteBuffer> it = meta.iterate(r.txn)) {
      for (KeyVal<ByteBuffer> kv : it) {
        String key = UTF_8.decode(kv.key()).toString();
        if (!key.equals("format") && !key.equals("digest") && !key.equals("chunk-size")) {
          w.putMeta(key, UTF_8.decode(kv.val()).toString());
        }
      }
    }
  }

  private void closeReaders() {
    Reader r;
    while ((r = allReaders.poll()) != null) {
      r.txn.close();
    }
  }

  /** Closes the index. Callers must have stopped using it. Idempotent. */
  @Override
  public void close() {
    if (state == State.CLOSED) {
      return;
    }
    state = State.CLOSED;
    closeReaders();
    env.close();
  }
}
