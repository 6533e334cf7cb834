package dev.skiff.casfs.fuse;

import static dev.skiff.casfs.fuse.FuseStructs.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.index.Inode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;

/**
 * The kernel-facing adapter: each libfuse low-level callback decodes its arguments, calls {@link
 * ImageFileSystem}, and replies. Every callback replies exactly once; failures become an errno in
 * {@link Errno#of} and nothing is thrown into native code. Operations that would write answer
 * EROFS; the ones not registered get ENOSYS from libfuse.
 *
 * <p>Callbacks run on the mount's loop threads, concurrently; per-thread scratch memory holds the
 * structs passed back to libfuse.
 */
final class CasFuse {
  private static final int O_ACCMODE = 3;

  private final LibFuse fuse;
  private final Runtime runtime;
  private final ImageFileSystem fs;
  private final ImageIndex index;
  private final double timeout;
  private final long logicalBytes;
  private final List<Object> keepAlive = new ArrayList<>();
  private final ThreadLocal<Scratch> scratch;
  private volatile boolean kernelOpens;
  private volatile boolean kernelOpendirs;

  /** Native memory one loop thread reuses for replies. */
  private final class Scratch {
    final Pointer stat = Memory.allocateDirect(runtime, STAT_SIZE);
    final Pointer entry = Memory.allocateDirect(runtime, ENTRY_SIZE);
    final Pointer name = Memory.allocateDirect(runtime, 4097);
    final Pointer statvfs = Memory.allocateDirect(runtime, STATVFS_SIZE);
    ByteBuffer data = ByteBuffer.allocateDirect(0);
    Pointer dataPtr;

    ByteBuffer data(int size) {
      if (data.capacity() < size) {
        data = ByteBuffer.allocateDirect(Math.max(size, 1 << 20) + 4096);
        dataPtr = Pointer.wrap(runtime, data);
      }
      return data.clear();
    }

    Pointer cString(byte[] b) {
      Pointer p = b.length < 4097 ? name : Memory.allocateDirect(runtime, b.length + 1);
      p.put(0, b, 0, b.length);
      p.putByte(b.length, (byte) 0);
      return p;
    }
  }

  CasFuse(LibFuse fuse, Runtime runtime, ImageFileSystem fs, double timeoutSeconds) {
    this.fuse = fuse;
    this.runtime = runtime;
    this.fs = fs;
    this.index = fs.index();
    this.timeout = timeoutSeconds;
    this.scratch = ThreadLocal.withInitial(Scratch::new);
    long bytes = 0;
    try {
      String stats = index.meta("stats");
      bytes = stats == null ? 0 : new ObjectMapper().readTree(stats).path("logicalBytes").asLong();
    } catch (IOException e) {
      Errno.of(e, "reading image stats", 0);
    }
    this.logicalBytes = bytes;
  }

  /**
   * Builds {@code struct fuse_lowlevel_ops}; the callbacks stay referenced for the mount's life.
   */
  Pointer ops() {
    Pointer ops = Memory.allocateDirect(runtime, OPS_COUNT * 8L);
    ops.setMemory(0, OPS_COUNT * 8L, (byte) 0);
    set(ops, OP_INIT, LibFuse.Init.class, (LibFuse.Init) this::init);
    set(ops, OP_LOOKUP, LibFuse.Lookup.class, (LibFuse.Lookup) this::lookup);
    set(
        ops,
        OP_FORGET,
        LibFuse.Forget.class,
        (LibFuse.Forget) (req, ino, n) -> fuse.fuse_reply_none(req));
    set(ops, OP_GETATTR, LibFuse.InoFileInfo.class, (LibFuse.InoFileInfo) this::getattr);
    set(ops, OP_READLINK, LibFuse.Ino.class, (LibFuse.Ino) this::readlink);
    set(ops, OP_OPEN, LibFuse.InoFileInfo.class, (LibFuse.InoFileInfo) this::open);
    set(ops, OP_READ, LibFuse.Read.class, (LibFuse.Read) this::read);
    set(ops, OP_RELEASE, LibFuse.InoFileInfo.class, (LibFuse.InoFileInfo) this::release);
    set(ops, OP_OPENDIR, LibFuse.InoFileInfo.class, (LibFuse.InoFileInfo) this::opendir);
    set(
        ops,
        OP_READDIR,
        LibFuse.Read.class,
        (LibFuse.Read) (req, ino, size, off, fi) -> readdir(req, ino, size, off, false));
    set(
        ops,
        OP_READDIRPLUS,
        LibFuse.Read.class,
        (LibFuse.Read) (req, ino, size, off, fi) -> readdir(req, ino, size, off, true));
    set(
        ops,
        OP_RELEASEDIR,
        LibFuse.InoFileInfo.class,
        (LibFuse.InoFileInfo) (req, ino, fi) -> fuse.fuse_reply_err(req, 0));
    set(ops, OP_STATFS, LibFuse.Ino.class, (LibFuse.Ino) this::statfs);
    set(ops, OP_GETXATTR, LibFuse.GetXattr.class, (LibFuse.GetXattr) this::getxattr);
    set(ops, OP_LISTXATTR, LibFuse.ListXattr.class, (LibFuse.ListXattr) this::listxattr);
    LibFuse.Refuse refuse = req -> fuse.fuse_reply_err(req, Errno.EROFS);
    for (int op :
        new int[] {
          OP_SETATTR,
          OP_MKNOD,
          OP_MKDIR,
          OP_UNLINK,
          OP_RMDIR,
          OP_SYMLINK,
          OP_RENAME,
          OP_LINK,
          OP_WRITE,
          OP_SETXATTR,
          OP_REMOVEXATTR,
          OP_CREATE,
          OP_FALLOCATE,
          OP_COPY_FILE_RANGE
        }) {
      set(ops, op, LibFuse.Refuse.class, refuse);
    }
    keepAlive.add(ops);
    return ops;
  }

  private <T> void set(Pointer ops, int slot, Class<T> type, T callback) {
    keepAlive.add(callback);
    Pointer fn = runtime.getClosureManager().getClosurePointer(type, callback);
    keepAlive.add(fn);
    ops.putPointer(slot * 8L, fn);
  }

  private void init(Pointer userdata, Pointer conn) {
    try {
      int capable = conn.getInt(CONN_CAPABLE);
      int want = conn.getInt(CONN_WANT);
      // Where the kernel can open files and directories by itself (answering ENOSYS tells it to),
      // it keeps page and directory caches by default and never sends OPEN or RELEASE again: an
      // open of a cached file then costs no trip to Java at all.
      kernelOpens = (capable & CAP_NO_OPEN_SUPPORT) != 0;
      kernelOpendirs = (capable & CAP_NO_OPENDIR_SUPPORT) != 0;
      want |=
          capable & (CAP_ASYNC_READ | CAP_READDIRPLUS | CAP_PARALLEL_DIROPS | CAP_CACHE_SYMLINKS);
      want &= ~(CAP_READDIRPLUS_AUTO | CAP_AUTO_INVAL_DATA);
      conn.putInt(CONN_WANT, want);
      conn.putInt(CONN_MAX_BACKGROUND, 64);
      conn.putInt(CONN_CONGESTION_THRESHOLD, 48);
    } catch (Throwable t) {
      Errno.of(t, "init", 0);
    }
  }

  private static byte[] cName(Pointer p) {
    int len = (int) p.indexOf(0, (byte) 0);
    byte[] b = new byte[len];
    p.get(0, b, 0, len);
    return b;
  }

  private void lookup(Pointer req, long parent, Pointer namePtr) {
    try {
      Inode n = fs.lookup(parent, cName(namePtr));
      Scratch s = scratch.get();
      putEntry(s.entry, n, timeout);
      fuse.fuse_reply_entry(req, s.entry);
    } catch (Throwable t) {
      fuse.fuse_reply_err(req, Errno.of(t, "lookup", parent));
    }
  }

  private void getattr(Pointer req, long ino, Pointer fi) {
    try {
      Inode n = fs.stat(ino);
      Scratch s = scratch.get();
      putStat(s.stat, 0, n);
      fuse.fuse_reply_attr(req, s.stat, timeout);
    } catch (Throwable t) {
      fuse.fuse_reply_err(req, Errno.of(t, "getattr", ino));
    }
  }

  private void readlink(Pointer req, long ino) {
    try {
      byte[] target = fs.readlink(ino);
      fuse.fuse_reply_readlink(req, scratch.get().cString(target));
    } catch (Throwable t) {
      fuse.fuse_reply_err(req, Errno.of(t, "readlink", ino));
    }
  }

  private void open(Pointer req, long ino, Pointer fi) {
    try {
      if (kernelOpens) {
        fuse.fuse_reply_err(
            req, Errno.ENOSYS); // the mount is read-only: the kernel refuses writes itself
        return;
      }
      if ((fi.getInt(FILE_INFO_FLAGS) & O_ACCMODE) != 0) {
        fuse.fuse_reply_err(req, Errno.EROFS);
        return;
      }
      Inode n = fs.getattr(ino);
      if (n.isDirectory()) {
        fuse.fuse_reply_err(req, Errno.EISDIR);
        return;
      }
      fi.putInt(FILE_INFO_BITS, fi.getInt(FILE_INFO_BITS) | FI_KEEP_CACHE);
      fuse.fuse_reply_open(req, fi);
    } catch (Throwable t) {
      fuse.fuse_reply_err(req, Errno.of(t, "open", ino));
    }
  }

  private void opendir(Pointer req, long ino, Pointer fi) {
    try {
      if (kernelOpendirs) {
        fuse.fuse_reply_err(req, Errno.ENOSYS);
        return;
      }
      if (!fs.getattr(ino).isDirectory()) {
        fuse.fuse_reply_err(req, Errno.ENOTDIR);
        return;
      }
      fi.putInt(FILE_INFO_BITS, fi.getInt(FILE_INFO_BITS) | FI_KEEP_CACHE | FI_CACHE_READDIR);
      fuse.fuse_reply_open(req, fi);
    } catch (Throwable t) {
      fuse.fuse_reply_err(req, Errno.of(t, "opendir", ino));
    }
  }

  private void read(Pointer req, long ino, long size, long off, Pointer fi) {
    try {
      Scratch s = scratch.get();
      ByteBuffer buf = s.data((int) size);
      int n = fs.read(ino, off, (int) size, buf);
      fuse.fuse_reply_buf(req, s.dataPtr, n);
    } catch (Throwable t) {
      fuse.fuse_reply_err(req, Errno.of(t, "read", ino));
    }
  }

  private void release(Pointer req, long ino, Pointer fi) {
    fs.release(ino);
    fuse.fuse_reply_err(req, 0);
  }

  /**
   * Directory offsets: 0 is ".", 1 is "..", position p of the index listing is p + 2; each entry
   * carries the offset of the one after it.
   */
  private void readdir(Pointer req, long ino, long size, long off, boolean plus) {
    try {
      Scratch s = scratch.get();
      s.data((int) size);
      Pointer buf = s.dataPtr;
      long[] used = {0};
      Inode dir = fs.getattr(ino);
      if (!dir.isDirectory()) {
        fuse.fuse_reply_err(req, Errno.ENOTDIR);
        return;
      }
      boolean full = false;
      if (off == 0) {
        full = !addEntry(s, req, buf, size, used, new byte[] {'.'}, dir, 1, plus);
      }
      if (!full && off <= 1) {
        full = !addEntry(s, req, buf, size, used, new byte[] {'.', '.'}, dir, 2, plus);
      }
      if (!full) {
        int from = (int) Math.max(0, off - 2);
        fs.readdir(
            ino,
            from,
            (pos, name, child) -> {
              Inode c =
                  plus
                      ? index.inode(child)
                      : new Inode(child, modeOf(child), 0, 0, 0, 0, 0, 0, 0, 0, false);
              return c != null && addEntry(s, req, buf, size, used, name, c, pos + 3, plus);
            });
      }
      fuse.fuse_reply_buf(req, buf, used[0]);
    } catch (Throwable t) {
      fuse.fuse_reply_err(req, Errno.of(t, plus ? "readdirplus" : "readdir", ino));
    }
  }

  private int modeOf(long ino) {
    Inode n = index.inode(ino);
    return n == null ? 0 : n.mode();
  }

  private boolean addEntry(
      Scratch s,
      Pointer req,
      Pointer buf,
      long size,
      long[] used,
      byte[] name,
      Inode n,
      long nextOff,
      boolean plus) {
    Pointer cname = s.cString(name);
    long rem = size - used[0];
    long need;
    if (plus) {
      putEntry(s.entry, n, timeout);
      need = fuse.fuse_add_direntry_plus(req, buf.slice(used[0]), rem, cname, s.entry, nextOff);
    } else {
      putStat(s.stat, 0, n);
      need = fuse.fuse_add_direntry(req, buf.slice(used[0]), rem, cname, s.stat, nextOff);
    }
    if (need > rem) {
      return false;
    }
    used[0] += need;
    return true;
  }

  private void statfs(Pointer req, long ino) {
    try {
      Pointer v = scratch.get().statvfs;
      v.setMemory(0, STATVFS_SIZE, (byte) 0);
      v.putLong(0, 4096);
      v.putLong(8, 4096);
      v.putLong(16, (logicalBytes + 4095) / 4096);
      v.putLong(40, index.inodeCount());
      v.putLong(72, 1); // ST_RDONLY
      v.putLong(80, 255);
      fuse.fuse_reply_statfs(req, v);
    } catch (Throwable t) {
      fuse.fuse_reply_err(req, Errno.of(t, "statfs", ino));
    }
  }

  private void getxattr(Pointer req, long ino, Pointer namePtr, long size) {
    try {
      if (!index.hasXattrs()) {
        // No inode has any: ENOSYS tells the kernel to stop asking (it asks for
        // security.capability on every exec and write).
        fuse.fuse_reply_err(req, Errno.ENOSYS);
        return;
      }
      byte[] v = fs.getxattr(ino, cName(namePtr));
      replyXattr(req, v, size);
    } catch (Throwable t) {
      fuse.fuse_reply_err(req, Errno.of(t, "getxattr", ino));
    }
  }

  private void listxattr(Pointer req, long ino, long size) {
    try {
      replyXattr(req, fs.listxattr(ino), size);
    } catch (Throwable t) {
      fuse.fuse_reply_err(req, Errno.of(t, "listxattr", ino));
    }
  }

  private void replyXattr(Pointer req, byte[] v, long size) {
    if (v == null) {
      fuse.fuse_reply_err(req, Errno.ENODATA);
    } else if (size == 0) {
      fuse.fuse_reply_xattr(req, v.length);
    } else if (size < v.length) {
      fuse.fuse_reply_err(req, Errno.ERANGE);
    } else {
      Scratch s = scratch.get();
      s.data(v.length).put(v);
      fuse.fuse_reply_buf(req, s.dataPtr, v.length);
    }
  }
}
