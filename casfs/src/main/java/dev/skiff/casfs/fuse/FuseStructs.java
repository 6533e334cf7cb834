package dev.skiff.casfs.fuse;

import dev.skiff.casfs.index.Inode;
import jnr.ffi.Pointer;

/** Byte offsets of the C structs exchanged with libfuse3 on 64-bit Linux, and their fillers. */
final class FuseStructs {
  private FuseStructs() {}

  /** {@code struct stat} (x86-64 glibc layout). */
  static final int STAT_SIZE = 144;

  /** {@code struct fuse_entry_param}: ino, generation, stat, attr_timeout, entry_timeout. */
  static final int ENTRY_SIZE = 16 + STAT_SIZE + 16;

  static final int ENTRY_ATTR = 16;

  /** {@code struct fuse_file_info} (libfuse 3.x): flags at 0, bit field word at 4, fh at 16. */
  static final int FILE_INFO_FLAGS = 0;

  static final int FILE_INFO_BITS = 4;
  static final int FI_DIRECT_IO = 1 << 1;
  static final int FI_KEEP_CACHE = 1 << 2;
  static final int FI_CACHE_READDIR = 1 << 6;

  /** {@code struct fuse_conn_info}. */
  static final int CONN_MAX_READAHEAD = 16;

  static final int CONN_CAPABLE = 20;
  static final int CONN_WANT = 24;
  static final int CONN_MAX_BACKGROUND = 28;
  static final int CONN_CONGESTION_THRESHOLD = 32;

  /** {@code struct fuse_buf}. */
  static final int BUF_SIZE = 40;

  /** {@code struct statvfs}. */
  static final int STATVFS_SIZE = 112;

  /** {@code struct fuse_args}: argc, argv, allocated. */
  static final int ARGS_SIZE = 24;

  static final int CAP_ASYNC_READ = 1;
  static final int CAP_AUTO_INVAL_DATA = 1 << 12;
  static final int CAP_READDIRPLUS = 1 << 13;
  static final int CAP_READDIRPLUS_AUTO = 1 << 14;
  static final int CAP_NO_OPEN_SUPPORT = 1 << 17;
  static final int CAP_PARALLEL_DIROPS = 1 << 18;
  static final int CAP_NO_OPENDIR_SUPPORT = 1 << 24;
  static final int CAP_CACHE_SYMLINKS = 1 << 23;

  /** Number of function pointers in {@code struct fuse_lowlevel_ops} of libfuse 3.14. */
  static final int OPS_COUNT = 44;

  // Slots of struct fuse_lowlevel_ops, in declaration order.
  static final int OP_INIT = 0;
  static final int OP_LOOKUP = 2;
  static final int OP_FORGET = 3;
  static final int OP_GETATTR = 4;
  static final int OP_SETATTR = 5;
  static final int OP_READLINK = 6;
  static final int OP_MKNOD = 7;
  static final int OP_MKDIR = 8;
  static final int OP_UNLINK = 9;
  static final int OP_RMDIR = 10;
  static final int OP_SYMLINK = 11;
  static final int OP_RENAME = 12;
  static final int OP_LINK = 13;
  static final int OP_OPEN = 14;
  static final int OP_READ = 15;
  static final int OP_WRITE = 16;
  static final int OP_RELEASE = 18;
  static final int OP_OPENDIR = 20;
  static final int OP_READDIR = 21;
  static final int OP_RELEASEDIR = 22;
  static final int OP_STATFS = 24;
  static final int OP_SETXATTR = 25;
  static final int OP_GETXATTR = 26;
  static final int OP_LISTXATTR = 27;
  static final int OP_REMOVEXATTR = 28;
  static final int OP_CREATE = 30;
  static final int OP_FALLOCATE = 40;
  static final int OP_READDIRPLUS = 41;
  static final int OP_COPY_FILE_RANGE = 42;

  /** Fills a {@code struct stat} at {@code p + at}. atime and ctime repeat mtime. */
  static void putStat(Pointer p, int at, Inode n) {
    p.setMemory(at, STAT_SIZE, (byte) 0);
    p.putLong(at + 8, n.ino());
    p.putLong(at + 16, n.nlink());
    p.putInt(at + 24, n.mode());
    p.putInt(at + 28, n.uid());
    p.putInt(at + 32, n.gid());
    p.putLong(at + 40, n.rdev());
    p.putLong(at + 48, n.size());
    p.putLong(at + 56, 4096);
    p.putLong(at + 64, (n.size() + 511) / 512);
    for (int t = 72; t <= 104; t += 16) {
      p.putLong(at + t, n.mtimeSeconds());
      p.putLong(at + t + 8, n.mtimeNanos());
    }
  }

  /** Fills a {@code struct fuse_entry_param}; a null inode makes a cacheable negative entry. */
  static void putEntry(Pointer p, Inode n, double timeout) {
    if (n == null) {
      p.setMemory(0, ENTRY_SIZE, (byte) 0);
    } else {
      p.putLong(0, n.ino());
      p.putLong(8, 0);
      putStat(p, ENTRY_ATTR, n);
      p.putDouble(ENTRY_ATTR + STAT_SIZE, timeout);
    }
    p.putDouble(ENTRY_ATTR + STAT_SIZE + 8, timeout);
  }
}
