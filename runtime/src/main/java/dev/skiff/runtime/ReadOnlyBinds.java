package dev.skiff.runtime;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Read-only binds made on the host, under a sandbox's state directory, for runsc to take as the
 * sources of the sandbox's read-only mounts (read-only volumes, the warm init binary).
 *
 * <p>Why: a read-only mount in the spec is read-only in gVisor's view only. runsc 2024-07 answers
 * an {@code O_TRUNC} open in a read-only volume with EROFS and yet truncates the host file. A
 * source that is read-only in the host kernel refuses every write whatever runsc does.
 *
 * <p>Each bind is recursive (the source's submounts come along), private (a mount made under the
 * source later does not appear in it, writable) and read-only at every level, keeping each mount's
 * nosuid, nodev, noexec and atime flags. They belong to the sandbox's directory: {@link
 * SandboxRuntime#clean} detaches every mount under it ({@link #detachUnder}), for a sandbox closed
 * here as for one whose owner died, before it removes the directory. Used by the thread that
 * launches the sandbox only.
 */
final class ReadOnlyBinds {
  private final Path dir;
  private int next;

  /** Binds made under {@code dir} (created on the first). */
  ReadOnlyBinds(Path dir) {
    this.dir = dir;
  }

  /**
   * Binds {@code source} (a directory or a file) read-only under the directory; returns the bind.
   */
  Path add(Path source) throws IOException {
    BasicFileAttributes a;
    try {
      a = Files.readAttributes(source, BasicFileAttributes.class);
    } catch (NoSuchFileException e) {
      throw new IOException(
          "cannot bind " + source + " read-only into the sandbox: it does not exist");
    }
    Path target = Files.createDirectories(dir).toRealPath().resolve(Integer.toString(next++));
    if (a.isDirectory()) {
      Files.createDirectory(target);
    } else {
      Files.createFile(target);
    }
    Libc.mount(source, target, Libc.MS_BIND | Libc.MS_REC, "binding " + source + " at " + target);
    try {
      Libc.mount(
          null, target, Libc.MS_REC | Libc.MS_PRIVATE, "making the bind of " + source + " private");
      for (Mount m : mountsUnder(target)) {
        Libc.mount(
            null,
            m.point(),
            Libc.MS_REMOUNT | Libc.MS_BIND | Libc.MS_RDONLY | m.keptFlags(),
            "making the bind of " + source + " read-only at " + m.point());
      }
    } catch (IOException e) {
      try {
        detachUnder(target);
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
    return target;
  }

  /**
   * Detaches every mount at or below {@code dir} (lazily, deepest first), and fails if any is left:
   * a caller about to remove {@code dir} must not, or it would remove what is bound there.
   */
  static void detachUnder(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    Path real = dir.toRealPath();
    int lastErr = 0;
    for (int round = 0; round < 3; round++) {
      List<Mount> mounts = mountsUnder(real);
      if (mounts.isEmpty()) {
        return;
      }
      mounts.sort(Comparator.comparingInt((Mount m) -> m.point().getNameCount()).reversed());
      for (Mount m : mounts) {
        int err = Libc.umount2(m.point(), Libc.MNT_DETACH | Libc.UMOUNT_NOFOLLOW);
        if (err != 0 && err != Libc.EINVAL && err != Libc.ENOENT) { // EINVAL: gone with its parent
          lastErr = err;
        }
      }
    }
    List<Mount> left = mountsUnder(real);
    if (!left.isEmpty()) {
      throw new IOException(
          "cannot unmount "
              + left.stream().map(m -> m.point().toString()).toList()
              + " under "
              + real
              + (lastErr != 0 ? ": " + Libc.describe(lastErr) : "")
              + "; unmount them by hand, then remove "
              + real);
    }
  }

  /**
   * A mount in this process's namespace: where, and the per-mount flags a read-only remount keeps.
   */
  record Mount(Path point, long keptFlags) {}

  /** The mounts at or below {@code dir} ({@code /proc/self/mountinfo}), in the table's order. */
  static List<Mount> mountsUnder(Path dir) throws IOException {
    List<Mount> out = new ArrayList<>();
    for (String line :
        Files.readAllLines(Path.of("/proc/self/mountinfo"), StandardCharsets.ISO_8859_1)) {
      String[] f = line.split(" ");
      if (f.length < 6) {
        continue;
      }
      Path point = Path.of(unescape(f[4]));
      if (point.startsWith(dir)) {
        out.add(new Mount(point, keptFlags(f[5])));
      }
    }
    return out;
  }

  private static long keptFlags(String options) {
    long flags = 0;
    for (String o : options.split(",")) {
      flags |=
          switch (o) {
            case "nosuid" -> Libc.MS_NOSUID;
            case "nodev" -> Libc.MS_NODEV;
            case "noexec" -> Libc.MS_NOEXEC;
            case "noatime" -> Libc.MS_NOATIME;
            case "nodiratime" -> Libc.MS_NODIRATIME;
            case "relatime" -> Libc.MS_RELATIME;
            default -> 0;
          };
    }
    return flags;
  }

  /** mountinfo writes space, tab, newline and backslash in paths as octal escapes. */
  private static String unescape(String s) {
    if (s.indexOf('\\') < 0) {
      return s;
    }
    java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '\\' && i + 3 < s.length() && s.substring(i + 1, i + 4).matches("[0-7]{3}")) {
        b.write(Integer.parseInt(s.substring(i + 1, i + 4), 8));
        i += 3;
      } else {
        b.write(c);
      }
    }
    return b.toString(StandardCharsets.UTF_8);
  }
}
