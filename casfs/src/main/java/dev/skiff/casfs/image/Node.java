package dev.skiff.casfs.image;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One inode of an image being imported. Hardlinked paths share one Node. Names are raw bytes held
 * one char per byte (ISO-8859-1), so a TreeMap orders them as unsigned bytes.
 */
final class Node {
  static final int S_IFMT = 0170000;
  static final int S_IFSOCK = 0140000;
  static final int S_IFLNK = 0120000;
  static final int S_IFREG = 0100000;
  static final int S_IFBLK = 0060000;
  static final int S_IFDIR = 0040000;
  static final int S_IFCHR = 0020000;
  static final int S_IFIFO = 0010000;

  int mode;
  long uid;
  long gid;
  long mtimeSeconds;
  int mtimeNanos;
  long rdev;
  byte[] symlinkTarget;
  long size;
  byte[] inline;
  List<ChunkWriter.PendingChunk> chunks = List.of();
  Map<String, byte[]> xattrs = new LinkedHashMap<>();
  TreeMap<String, Node> children;

  /** The layer that last wrote this node; whiteouts only hide what lower layers wrote. */
  int layer;

  long ino;
  int nlink;

  boolean isDir() {
    return (mode & S_IFMT) == S_IFDIR;
  }

  boolean isRegular() {
    return (mode & S_IFMT) == S_IFREG;
  }

  static Node directory(int perm, int layer) {
    Node n = new Node();
    n.mode = S_IFDIR | perm;
    n.children = new TreeMap<>();
    n.layer = layer;
    return n;
  }

  /** Linux's dev_t encoding, as the kernel's FUSE attr and stat(2) carry it. */
  static long makedev(long major, long minor) {
    return ((major & 0xfffL) << 8)
        | (minor & 0xffL)
        | ((minor & 0xfff00L) << 12)
        | ((major & ~0xfffL) << 32)
        | ((minor & ~0xfffffL) << 12);
  }
}
