package dev.skiff.casfs.fs;

import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.index.Inode;
import dev.skiff.casfs.pack.ChunkLocation;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * The read-only filesystem an image presents, by inode number: attributes, lookups, directory
 * listings, link targets, extended attributes and file bytes. Everything comes from the index
 * except file bytes, which come from the chunk reader, touching only the chunks a read covers. No
 * kernel involved, so it is tested without a mount; the FUSE adapter only translates.
 *
 * <p>Thread safe. Missing inodes raise {@link NoSuchInodeException}; a missing name is a 0 return.
 */
public final class ImageFileSystem {
  /** Chunks fetched ahead of a reader that reads a file sequentially. */
  private static final int READ_AHEAD_CHUNKS = 2;

  /**
   * Files whose last read chunk is remembered for sequential detection. The kernel opens files
   * itself on this mount and sends no release, so the map is bounded here instead.
   */
  private static final int MAX_TRACKED_FILES = 4096;

  private final ImageIndex index;
  private final ChunkReader chunks;
  private final int chunkSize;
  private final ConcurrentHashMap<Long, Integer> lastChunk = new ConcurrentHashMap<>();
  private final LongAdder lookups = new LongAdder();
  private final LongAdder getattrs = new LongAdder();
  private final LongAdder reads = new LongAdder();
  private final LongAdder readdirs = new LongAdder();
  private final java.util.Set<dev.skiff.casfs.digest.Digest> accessed =
      ConcurrentHashMap.newKeySet();
  private volatile ChunkAccessListener listener;

  public ImageFileSystem(ImageIndex index, ChunkReader chunks) {
    this.index = index;
    this.chunks = chunks;
    this.chunkSize = index.chunkSize();
  }

  /** Sets the listener told of each chunk's first read (null for none). */
  public void setAccessListener(ChunkAccessListener listener) {
    this.listener = listener;
  }

  public ImageIndex index() {
    return index;
  }

  public ChunkReader chunks() {
    return chunks;
  }

  /** How many operations reached this filesystem; the kernel answers cached ones itself. */
  public record Stats(long lookups, long getattrs, long reads, long readdirs) {}

  public Stats stats() {
    return new Stats(lookups.sum(), getattrs.sum(), reads.sum(), readdirs.sum());
  }

  /** Attributes of an inode; counted, unlike the internal lookups other operations make. */
  public Inode stat(long ino) throws NoSuchInodeException {
    getattrs.increment();
    return getattr(ino);
  }

  public Inode getattr(long ino) throws NoSuchInodeException {
    Inode n = index.inode(ino);
    if (n == null) {
      throw new NoSuchInodeException(ino);
    }
    return n;
  }

  /** The child's inode, or null if {@code parent} has no entry {@code name}. */
  public Inode lookup(long parent, byte[] name)
      throws NoSuchInodeException, NotADirectoryException {
    lookups.increment();
    Inode dir = getattr(parent);
    if (!dir.isDirectory()) {
      throw new NotADirectoryException(parent);
    }
    long child = index.lookup(parent, name);
    return child == 0 ? null : getattr(child);
  }

  public void readdir(long dir, int position, ImageIndex.EntryVisitor visitor)
      throws NoSuchInodeException, NotADirectoryException {
    readdirs.increment();
    if (!getattr(dir).isDirectory()) {
      throw new NotADirectoryException(dir);
    }
    index.list(dir, position, visitor);
  }

  /** A directory's entries in name order, without "." and "..": names (UTF-8) and inodes. */
  public java.util.List<java.util.Map.Entry<String, Long>> entries(long dir)
      throws NoSuchInodeException, NotADirectoryException {
    java.util.List<java.util.Map.Entry<String, Long>> out = new java.util.ArrayList<>();
    readdir(
        dir,
        0,
        (pos, name, ino) -> {
          String n = new String(name, java.nio.charset.StandardCharsets.UTF_8);
          if (!n.equals(".") && !n.equals("..")) {
            out.add(java.util.Map.entry(n, ino));
          }
          return true;
        });
    return out;
  }

  public byte[] readlink(long ino) throws IOException {
    Inode n = getattr(ino);
    if (!n.isSymlink()) {
      throw new IllegalArgumentException("inode " + ino + " is not a symlink");
    }
    byte[] t = index.data(ino);
    if (t == null) {
      throw new IOException("symlink inode " + ino + " has no target in the index");
    }
    return t;
  }

  /**
   * Copies up to {@code length} bytes of a regular file from {@code offset} into {@code dst} (from
   * its position) and returns how many were copied: fewer only at the end of the file.
   */
  public int read(long ino, long offset, int length, ByteBuffer dst) throws IOException {
    reads.increment();
    Inode n = getattr(ino);
    if (n.isDirectory()) {
      throw new IsADirectoryException(ino);
    }
    if (offset >= n.size() || length <= 0) {
      return 0;
    }
    int len = (int) Math.min(Math.min(length, n.size() - offset), dst.remaining());
    if (n.inline()) {
      byte[] data = index.data(ino);
      dst.put(data, (int) offset, len);
      return len;
    }
    int first = (int) (offset / chunkSize);
    int last = (int) ((offset + len - 1) / chunkSize);
    long pos = offset;
    for (int c = first; c <= last; c++) {
      ChunkLocation loc = index.chunk(ino, c);
      if (loc == null) {
        throw new IOException("index of inode " + ino + " lacks chunk " + c);
      }
      ChunkAccessListener l = listener;
      if (l != null && accessed.add(loc.digest())) {
        l.firstAccess(ino, c, loc, chunks.isReady(loc.digest()));
      }
      byte[] data = chunks.get(loc);
      int within = (int) (pos - (long) c * chunkSize);
      int take = (int) Math.min(data.length - within, offset + len - pos);
      dst.put(data, within, take);
      pos += take;
    }
    readAhead(ino, n, last);
    return len;
  }

  private void readAhead(long ino, Inode n, int chunk) {
    if (n.chunkCount() <= 1) {
      return;
    }
    if (lastChunk.size() >= MAX_TRACKED_FILES) {
      lastChunk.clear(); // a hint only: bounded, for a mount that lives for days
    }
    Integer prev = lastChunk.put(ino, chunk);
    if (prev == null || (prev != chunk - 1 && prev != chunk)) {
      return;
    }
    for (int c = chunk + 1; c <= chunk + READ_AHEAD_CHUNKS && c < n.chunkCount(); c++) {
      ChunkLocation loc = index.chunk(ino, c);
      if (loc != null) {
        chunks.prefetch(loc);
      }
    }
  }

  /** An extended attribute's value, or null if the inode has none by that name. */
  public byte[] getxattr(long ino, byte[] name) throws NoSuchInodeException {
    getattr(ino);
    return index.xattr(ino, name);
  }

  /** Extended attribute names as listxattr(2) returns them: each followed by a NUL. */
  public byte[] listxattr(long ino) throws NoSuchInodeException {
    getattr(ino);
    var out = new java.io.ByteArrayOutputStream();
    for (byte[] name : index.xattrNames(ino)) {
      out.writeBytes(name);
      out.write(0);
    }
    return out.toByteArray();
  }

  /** Forgets per-file read state (sequential detection) when the kernel releases a file. */
  public void release(long ino) {
    lastChunk.remove(ino);
  }
}
