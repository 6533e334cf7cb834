package dev.skiff.casfs.index;

/**
 * The layout of an image index: one LMDB file (no subdirectory) holding these databases. All
 * integers are big-endian so that keys sort numerically.
 *
 * <pre>
 * inode    ino(8)                 -> mode(4) uid(4) gid(4) nlink(4) size(8) mtime(8) nanos(4) flags(4) rdev(8) chunks(4)
 * dirent   parent(8) name         -> ino(8)                     lookup by name
 * dirlist  parent(8) position(4)  -> ino(8) name                readdir from an offset
 * xattr    ino(8) name            -> value
 * chunk    ino(8) index(4)        -> digest pack(4) offset(8) stored(4) plain(4) codec(1)
 * data     ino(8)                 -> inline file bytes or symlink target
 * pack     pack(4)                -> pack blob name (UTF-8)
 * meta     key (UTF-8)            -> value (format, digest, chunk-size, config, source, stats)
 * </pre>
 *
 * The root directory is inode 1, as FUSE expects.
 */
final class IndexFormat {
  static final int VERSION = 1;
  static final long ROOT = 1;
  static final String[] DBS = {
    "inode", "dirent", "dirlist", "xattr", "chunk", "data", "pack", "meta"
  };

  private IndexFormat() {}
}
