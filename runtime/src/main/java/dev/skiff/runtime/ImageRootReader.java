package dev.skiff.runtime;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Optional;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;

/**
 * Reads a file inside an image's root as the image sees it: the root is {@code /}, so a symlink to
 * {@code /etc/shadow}, or to {@code ../../../etc/shadow}, leads to the image's file, never to the
 * host's. Every file Skiff itself reads in an image (its /etc/passwd and /etc/group) is read here,
 * as root, before any sandbox exists.
 *
 * <p>The kernel resolves the path: openat2(2) with RESOLVE_IN_ROOT (and RESOLVE_NO_MAGICLINKS),
 * Linux 5.6 and later. Where openat2 is missing (ENOSYS; or EPERM from a seccomp filter older than
 * it), a walk does the same in Java: one component at a time with lstat, a symlink's target
 * re-rooted at the root, {@code ..} clamped there, at most 40 symlinks (the kernel's limit). The
 * walk is exact for a root nothing changes while it runs (a casfs mount is read-only); on a host
 * directory being changed it can race, which openat2 cannot.
 *
 * <p>Only a regular file is read (opened without waiting, so a FIFO does not block), at most a
 * given size. Thread safe.
 */
final class ImageRootReader {
  /** Size limit of {@link #read}: far above any real passwd or group file. */
  static final int MAX_BYTES = 8 << 20;

  private static final int MAX_SYMLINKS = 40;
  private static volatile boolean noOpenat2;

  private ImageRootReader() {}

  /**
   * The bytes of {@code path} (absolute or not, either way from the root) inside {@code root}, or
   * empty if there is no such file; an IOException for a symlink loop, something other than a
   * regular file, or a file over {@link #MAX_BYTES}.
   */
  static Optional<byte[]> read(Path root, String path) throws IOException {
    if (!noOpenat2) {
      Optional<byte[]> r = readWithOpenat2(root, path, MAX_BYTES);
      if (r != null) {
        return r;
      }
      noOpenat2 = true;
    }
    return readByWalking(root, path, MAX_BYTES);
  }

  /** Whether this kernel has openat2 (asked once, by {@link #read}'s first call if not before). */
  static boolean hasOpenat2() {
    if (!noOpenat2) {
      try {
        if (readWithOpenat2(Path.of("/"), "/", 1) == null) {
          noOpenat2 = true;
        }
      } catch (IOException expected) {
        // "/" is not a regular file: openat2 answered
      }
    }
    return !noOpenat2;
  }

  /** {@link #read} by openat2; null where the kernel has none. */
  static Optional<byte[]> readWithOpenat2(Path root, String path, int maxBytes) throws IOException {
    Libc.Native c = Libc.lib();
    int dir = c.open(root.toString(), Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
    if (dir < 0) {
      throw new IOException(
          "cannot open " + root + " to read " + path + " in it: " + Libc.describe(Libc.errno()));
    }
    try {
      Pointer how = Memory.allocateDirect(Libc.runtime(), 24);
      how.putLong(0, Libc.O_RDONLY | Libc.O_NOCTTY | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
      how.putLong(8, 0);
      how.putLong(16, Libc.RESOLVE_IN_ROOT | Libc.RESOLVE_NO_MAGICLINKS);
      String relative = path.replaceFirst("^/+", "");
      long fd;
      int err = 0;
      int tries = 0;
      do { // EAGAIN: a rename or mount raced the lookup; the kernel asks for a retry
        fd = c.syscall(Libc.SYS_OPENAT2, dir, relative.isEmpty() ? "." : relative, how, 24);
        err = fd < 0 ? Libc.errno() : 0;
      } while ((err == Libc.EAGAIN || err == Libc.EINTR) && ++tries < 10);
      if (fd < 0) {
        return switch (err) {
          case Libc.ENOSYS, Libc.EPERM -> null;
          case Libc.ENOENT, Libc.ENOTDIR -> Optional.empty();
          case Libc.ELOOP -> throw tooManyLinks(path, root);
          default ->
              throw new IOException(
                  "cannot open " + path + " in " + root + ": " + Libc.describe(err));
        };
      }
      try {
        return Optional.of(readFd((int) fd, path, root, maxBytes));
      } finally {
        c.close((int) fd);
      }
    } finally {
      c.close(dir);
    }
  }

  private static byte[] readFd(int fd, String path, Path root, int maxBytes) throws IOException {
    // The open file, whatever name led to it: the magic link in /proc names it.
    if (!Files.isRegularFile(Path.of("/proc/self/fd/" + fd))) {
      throw notRegular(path, root);
    }
    Libc.Native c = Libc.lib();
    Pointer buf = Memory.allocateDirect(Libc.runtime(), 65536);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] chunk = new byte[65536];
    while (true) {
      long n = c.read(fd, buf, chunk.length);
      if (n < 0) {
        int err = Libc.errno();
        if (err == Libc.EINTR || err == Libc.EAGAIN) {
          continue;
        }
        throw new IOException("reading " + path + " in " + root + ": " + Libc.describe(err));
      }
      if (n == 0) {
        return out.toByteArray();
      }
      if (out.size() + n > maxBytes) {
        throw tooLarge(path, root, maxBytes);
      }
      buf.get(0, chunk, 0, (int) n);
      out.write(chunk, 0, (int) n);
    }
  }

  /** {@link #read} by walking the path in Java, for kernels without openat2. */
  static Optional<byte[]> readByWalking(Path root, String path, int maxBytes) throws IOException {
    Deque<String> todo = new ArrayDeque<>(List.of(path.split("/")));
    List<String> at = new ArrayList<>(); // where the walk is, from the root
    boolean atDirectory = Files.isDirectory(root);
    int links = 0;
    while (!todo.isEmpty()) {
      String part = todo.pop();
      if (part.isEmpty()) {
        continue;
      }
      if (!atDirectory) {
        return Optional.empty(); // ENOTDIR
      }
      if (part.equals(".")) {
        continue;
      }
      if (part.equals("..")) {
        if (!at.isEmpty()) {
          at.remove(at.size() - 1);
        }
        continue;
      }
      Path next = resolve(root, at).resolve(part);
      BasicFileAttributes a;
      try {
        a = Files.readAttributes(next, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      } catch (NoSuchFileException | NotDirectoryException e) {
        return Optional.empty();
      }
      if (a.isSymbolicLink()) {
        if (++links > MAX_SYMLINKS) {
          throw tooManyLinks(path, root);
        }
        String target = Files.readSymbolicLink(next).toString();
        if (target.isEmpty()) {
          return Optional.empty();
        }
        if (target.startsWith("/")) {
          at.clear();
        }
        String[] parts = target.split("/");
        for (int i = parts.length - 1; i >= 0; i--) {
          todo.push(parts[i]);
        }
        continue; // still where the link is: a directory
      }
      at.add(part);
      atDirectory = a.isDirectory();
    }
    Path file = resolve(root, at);
    if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
      throw notRegular(path, root);
    }
    try (SeekableByteChannel ch =
        Files.newByteChannel(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      ByteBuffer b = ByteBuffer.allocate(65536);
      for (int n; (n = ch.read(b.clear())) >= 0; ) {
        if (out.size() + n > maxBytes) {
          throw tooLarge(path, root, maxBytes);
        }
        out.write(b.array(), 0, n);
      }
      return Optional.of(out.toByteArray());
    }
  }

  private static Path resolve(Path root, List<String> parts) {
    Path p = root;
    for (String s : parts) {
      p = p.resolve(s);
    }
    return p;
  }

  private static IOException tooManyLinks(String path, Path root) {
    return new IOException(
        "cannot read "
            + path
            + " in the image at "
            + root
            + ": more than "
            + MAX_SYMLINKS
            + " symbolic links (a loop?)");
  }

  private static IOException notRegular(String path, Path root) {
    return new IOException(path + " in the image at " + root + " is not a regular file");
  }

  private static IOException tooLarge(String path, Path root, int maxBytes) {
    return new IOException(
        path + " in the image at " + root + " is larger than " + maxBytes + " bytes");
  }
}
