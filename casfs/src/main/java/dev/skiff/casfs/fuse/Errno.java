package dev.skiff.casfs.fuse;

import dev.skiff.casfs.cache.CorruptChunkException;
import dev.skiff.casfs.fs.IsADirectoryException;
import dev.skiff.casfs.fs.NoSuchInodeException;
import dev.skiff.casfs.fs.NotADirectoryException;
import dev.skiff.casfs.store.StoreUnavailableException;
import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Linux errno values, and the one place where a failure becomes one. */
final class Errno {
  private static final Logger LOG = LoggerFactory.getLogger(Errno.class);

  static final int ENOENT = 2;
  static final int EINTR = 4;
  static final int EIO = 5;
  static final int EAGAIN = 11;
  static final int EACCES = 13;
  static final int ENODEV = 19;
  static final int ENOTDIR = 20;
  static final int EISDIR = 21;
  static final int EINVAL = 22;
  static final int EROFS = 30;
  static final int ERANGE = 34;
  static final int ENOSYS = 38;
  static final int ENODATA = 61;

  private Errno() {}

  /** Maps what an operation threw to the errno the kernel gets; logs what a person should see. */
  static int of(Throwable t, String op, long ino) {
    if (t instanceof NoSuchInodeException) {
      return ENOENT;
    }
    if (t instanceof NotADirectoryException) {
      return ENOTDIR;
    }
    if (t instanceof IsADirectoryException) {
      return EISDIR;
    }
    if (t instanceof IllegalArgumentException) {
      LOG.debug("{} on inode {}: {}", op, ino, t.getMessage());
      return EINVAL;
    }
    if (t instanceof CorruptChunkException) {
      return EIO; // logged with the chunk's name where it was detected
    }
    if (t instanceof StoreUnavailableException) {
      LOG.debug("{} on inode {} failed: {}", op, ino, t.getMessage());
      return EIO; // the store logged once that it stopped answering
    }
    if (t instanceof IOException) {
      LOG.warn("{} on inode {} failed: {}", op, ino, t.toString());
      return EIO;
    }
    LOG.error("{} on inode {} failed unexpectedly", op, ino, t);
    return EIO;
  }
}
