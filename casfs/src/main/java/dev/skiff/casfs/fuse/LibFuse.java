package dev.skiff.casfs.fuse;

import jnr.ffi.Pointer;
import jnr.ffi.annotations.Delegate;

/**
 * The parts of libfuse3's low-level API (3.x ABI, {@code fuse_lowlevel.h}) that Skiff uses, bound
 * through jnr-ffi. Struct layouts are those of x86-64 and aarch64 Linux; offsets live next to the
 * code that fills each struct ({@link FuseStructs}).
 */
public interface LibFuse {
  Pointer fuse_session_new(Pointer args, Pointer ops, long opSize, Pointer userdata);

  int fuse_session_mount(Pointer se, String mountpoint);

  void fuse_session_unmount(Pointer se);

  void fuse_session_destroy(Pointer se);

  int fuse_session_receive_buf(Pointer se, Pointer buf);

  void fuse_session_process_buf(Pointer se, Pointer buf);

  void fuse_session_exit(Pointer se);

  int fuse_session_exited(Pointer se);

  int fuse_session_fd(Pointer se);

  int fuse_reply_err(Pointer req, int err);

  void fuse_reply_none(Pointer req);

  int fuse_reply_entry(Pointer req, Pointer entryParam);

  int fuse_reply_attr(Pointer req, Pointer stat, double timeout);

  int fuse_reply_buf(Pointer req, Pointer buf, long size);

  int fuse_reply_readlink(Pointer req, Pointer link);

  int fuse_reply_open(Pointer req, Pointer fileInfo);

  int fuse_reply_xattr(Pointer req, long count);

  int fuse_reply_statfs(Pointer req, Pointer statvfs);

  long fuse_add_direntry(
      Pointer req, Pointer buf, long bufsize, Pointer name, Pointer stat, long off);

  long fuse_add_direntry_plus(
      Pointer req, Pointer buf, long bufsize, Pointer name, Pointer entryParam, long off);

  // Callbacks, by C signature. Arguments past the ones a callback reads are left off: on the
  // System V and AAPCS64 ABIs integer arguments travel in registers the callee may ignore.

  interface Init {
    @Delegate
    void call(Pointer userdata, Pointer conn);
  }

  interface Lookup {
    @Delegate
    void call(Pointer req, long parent, Pointer name);
  }

  interface Forget {
    @Delegate
    void call(Pointer req, long ino, long nlookup);
  }

  interface InoFileInfo {
    @Delegate
    void call(Pointer req, long ino, Pointer fi);
  }

  interface Ino {
    @Delegate
    void call(Pointer req, long ino);
  }

  interface Read {
    @Delegate
    void call(Pointer req, long ino, long size, long off, Pointer fi);
  }

  interface GetXattr {
    @Delegate
    void call(Pointer req, long ino, Pointer name, long size);
  }

  interface ListXattr {
    @Delegate
    void call(Pointer req, long ino, long size);
  }

  interface Access {
    @Delegate
    void call(Pointer req, long ino, int mask);
  }

  /** Any operation that would modify the image: answered with EROFS. */
  interface Refuse {
    @Delegate
    void call(Pointer req);
  }
}
