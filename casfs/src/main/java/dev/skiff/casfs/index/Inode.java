package dev.skiff.casfs.index;

/**
 * The attributes of one inode of an image, as {@code stat(2)} reports them. {@code rdev} uses
 * Linux's dev_t encoding. A regular file's bytes are either inline in the index or in {@code
 * chunkCount} chunks.
 */
public record Inode(
    long ino,
    int mode,
    int uid,
    int gid,
    int nlink,
    long size,
    long mtimeSeconds,
    int mtimeNanos,
    long rdev,
    int chunkCount,
    boolean inline) {

  public static final int S_IFMT = 0170000;
  public static final int S_IFDIR = 0040000;
  public static final int S_IFREG = 0100000;
  public static final int S_IFLNK = 0120000;

  public boolean isDirectory() {
    return (mode & S_IFMT) == S_IFDIR;
  }

  public boolean isRegular() {
    return (mode & S_IFMT) == S_IFREG;
  }

  public boolean isSymlink() {
    return (mode & S_IFMT) == S_IFLNK;
  }

  static final int RECORD_SIZE = 52;
  static final int FLAG_INLINE = 1;
}
