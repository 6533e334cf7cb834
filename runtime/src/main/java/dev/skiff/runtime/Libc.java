package dev.skiff.runtime;

import java.io.IOException;
import java.nio.file.Path;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Pointer;

/**
 * The few system calls the runtime makes itself rather than through a process: mount(2) and
 * umount2(2) for read-only binds, openat2(2) (through syscall(2): glibc 2.36 has no wrapper) and
 * read(2) for files inside an image root. Bound through jnr-ffi on first use; Linux on x86-64 and
 * aarch64 (openat2 is 437 on both). Callable from any thread: jnr keeps errno per thread.
 */
final class Libc {
  static final long MS_RDONLY = 1;
  static final long MS_NOSUID = 2;
  static final long MS_NODEV = 4;
  static final long MS_NOEXEC = 8;
  static final long MS_REMOUNT = 32;
  static final long MS_NOATIME = 1024;
  static final long MS_NODIRATIME = 2048;
  static final long MS_BIND = 4096;
  static final long MS_REC = 16384;
  static final long MS_PRIVATE = 1 << 18;
  static final long MS_RELATIME = 1 << 21;
  static final int MNT_DETACH = 2;
  static final int UMOUNT_NOFOLLOW = 8;

  static final int O_RDONLY = 0;
  static final int O_NOCTTY = 0x100;
  static final int O_NONBLOCK = 0x800;
  static final int O_DIRECTORY = 0x10000;
  static final int O_CLOEXEC = 0x80000;
  static final int O_PATH = 0x200000;
  static final long SYS_OPENAT2 = 437;
  static final long RESOLVE_NO_MAGICLINKS = 0x02;
  static final long RESOLVE_IN_ROOT = 0x10;

  static final int EPERM = 1;
  static final int ENOENT = 2;
  static final int EINTR = 4;
  static final int EAGAIN = 11;
  static final int ENOTDIR = 20;
  static final int EINVAL = 22;
  static final int ENOSYS = 38;
  static final int ELOOP = 40;

  /**
   * The C functions, as jnr-ffi binds them (public for jnr's generated class; the holder is not).
   */
  public interface Native {
    int mount(String source, String target, String fstype, long flags, Pointer data);

    int umount2(String target, int flags);

    long syscall(long number, long a1, String a2, Pointer a3, long a4);

    int open(String path, int flags);

    long read(int fd, Pointer buf, long count);

    int close(int fd);

    String strerror(int errnum);
  }

  private static final class Holder {
    static final Native LIB = LibraryLoader.create(Native.class).load("c");
    static final jnr.ffi.Runtime RUNTIME = jnr.ffi.Runtime.getRuntime(LIB);
  }

  private Libc() {}

  static Native lib() {
    return Holder.LIB;
  }

  static jnr.ffi.Runtime runtime() {
    return Holder.RUNTIME;
  }

  /** errno of this thread's last call. */
  static int errno() {
    return Holder.RUNTIME.getLastError();
  }

  static String describe(int errno) {
    String s = Holder.LIB.strerror(errno);
    return (s == null ? "error" : s) + " (errno " + errno + ")";
  }

  /** mount(2), or an IOException saying {@code what} failed and why. */
  static void mount(Path source, Path target, long flags, String what) throws IOException {
    if (Holder.LIB.mount(
            source == null ? null : source.toString(), target.toString(), null, flags, null)
        != 0) {
      throw new IOException(what + ": " + describe(errno()));
    }
  }

  /** umount2(2); returns 0 or the errno. */
  static int umount2(Path target, int flags) {
    return Holder.LIB.umount2(target.toString(), flags) == 0 ? 0 : errno();
  }
}
