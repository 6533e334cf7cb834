package dev.skiff.casfs.fuse;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * What the kernel has mounted where ({@code /proc/self/mountinfo}), and clearing dead FUSE mounts.
 */
public final class MountTable {
  private MountTable() {}

  /** One line of mountinfo. */
  public record MountEntry(Path mountpoint, String fsType, String source) {}

  public static List<MountEntry> read() throws IOException {
    List<MountEntry> out = new ArrayList<>();
    for (String line :
        Files.readAllLines(Path.of("/proc/self/mountinfo"), StandardCharsets.ISO_8859_1)) {
      String[] f = line.split(" ");
      int dash = java.util.Arrays.asList(f).indexOf("-");
      if (f.length < 5 || dash < 0 || dash + 2 >= f.length) {
        continue;
      }
      out.add(new MountEntry(Path.of(unescape(f[4])), f[dash + 1], f[dash + 2]));
    }
    return out;
  }

  private static String unescape(String s) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '\\' && i + 3 < s.length()) {
        b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
        i += 3;
      } else {
        b.append(c);
      }
    }
    return new String(b.toString().getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8);
  }

  /** The FUSE mount at {@code dir}, if any. */
  public static MountEntry fuseMountAt(Path dir) throws IOException {
    Path abs = dir.toAbsolutePath().normalize();
    MountEntry found = null;
    for (MountEntry e : read()) {
      if (e.mountpoint().equals(abs) && e.fsType().startsWith("fuse")) {
        found = e;
      }
    }
    return found;
  }

  /**
   * Whether a FUSE mount at {@code dir} has lost its daemon ("Transport endpoint is not
   * connected"). Asks with statfs, which the kernel never answers from its caches (a stat can be).
   */
  public static boolean isStale(Path dir) {
    try {
      Files.getFileStore(dir).getTotalSpace();
      return false;
    } catch (IOException e) {
      String m = String.valueOf(e.getMessage());
      return m.contains("not connected") || m.contains("No such device");
    }
  }

  /** Unmounts the FUSE mount at {@code dir} (lazily, so a busy one goes once released). */
  public static void unmount(Path dir) throws IOException {
    String abs = dir.toAbsolutePath().normalize().toString();
    IOException last = null;
    for (List<String> cmd :
        List.of(List.of("fusermount3", "-u", "-z", abs), List.of("umount", "-l", abs))) {
      try {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
          p.destroyForcibly();
          last = new IOException(String.join(" ", cmd) + " timed out");
        } else if (p.exitValue() == 0) {
          return;
        } else {
          last = new IOException(String.join(" ", cmd) + ": " + out);
        }
      } catch (IOException e) {
        last = e;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted unmounting " + abs, e);
      }
    }
    throw new IOException("cannot unmount " + abs + ": " + (last == null ? "" : last.getMessage()));
  }
}
