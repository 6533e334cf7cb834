package dev.skiff.casfs.testing;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.index.Inode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * A file tree as lines, one per file, sorted by path, with everything a file is: type and mode,
 * owner, link count, time (seconds), device number, size, content digest, link target, extended
 * attributes. The same for an image in the store and for a directory on disk, so that the two can
 * be compared line for line.
 */
public final class Trees {
  private Trees() {}

  private static String line(
      String path, int mode, int uid, int gid, int nlink, long mtime, long rdev, long size) {
    return String.format(
        "%s mode=%o uid=%d gid=%d nlink=%d mtime=%d rdev=%d size=%d",
        path, mode, uid, gid, nlink, mtime, rdev, size);
  }

  private static String sha256(byte[] b) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void xattrs(StringBuilder line, Map<String, byte[]> x) {
    new TreeMap<>(x)
        .forEach(
            (k, v) -> line.append(' ').append(k).append('=').append(HexFormat.of().formatHex(v)));
  }

  /** The tree of an image in the store. */
  public static List<String> ofImage(ImageStore store, ImageRef ref) throws IOException {
    List<String> out = new ArrayList<>();
    try (ImageIndex index = store.openIndex(store.resolve(ref).orElseThrow())) {
      ImageFileSystem fs =
          new ImageFileSystem(index, new ChunkReader(store.blobs(), 16 << 20, null, Runnable::run));
      walk(fs, ImageIndex.ROOT, "", out);
    }
    out.sort(null);
    return out;
  }

  private static void walk(ImageFileSystem fs, long dir, String prefix, List<String> out)
      throws IOException {
    for (var e : fs.entries(dir)) {
      long ino = e.getValue();
      String path = prefix + e.getKey();
      Inode in = fs.getattr(ino);
      boolean dirOrLink = in.isDirectory() || (in.mode() & Inode.S_IFMT) == Inode.S_IFLNK;
      StringBuilder line =
          new StringBuilder(
              line(
                  path,
                  in.mode(),
                  in.uid(),
                  in.gid(),
                  in.isDirectory() ? 0 : in.nlink(),
                  in.mtimeSeconds(),
                  in.rdev(),
                  dirOrLink ? 0 : in.size()));
      if (in.isRegular()) {
        ByteBuffer b = ByteBuffer.allocate((int) in.size());
        while (b.hasRemaining() && fs.read(ino, b.position(), b.remaining(), b) > 0) {}
        line.append(" sha256=").append(sha256(b.array()));
      }
      if ((in.mode() & Inode.S_IFMT) == Inode.S_IFLNK) {
        line.append(" -> ").append(new String(fs.readlink(ino), StandardCharsets.UTF_8));
      }
      Map<String, byte[]> x = new java.util.HashMap<>();
      byte[] names = fs.listxattr(ino);
      int start = 0;
      for (int i = 0; i < names.length; i++) {
        if (names[i] == 0) {
          byte[] n = java.util.Arrays.copyOfRange(names, start, i);
          x.put(new String(n, StandardCharsets.UTF_8), fs.getxattr(ino, n));
          start = i + 1;
        }
      }
      xattrs(line, x);
      out.add(line.toString());
      if (in.isDirectory()) {
        walk(fs, ino, path + "/", out);
      }
    }
  }

  /** The tree of a directory on disk (its extended attributes read with getfattr, as root). */
  public static List<String> ofDirectory(Path root) throws IOException {
    List<String> out = new ArrayList<>();
    try (Stream<Path> all = Files.walk(root)) {
      for (Path p : all.filter(p -> !p.equals(root)).toList()) {
        Map<String, Object> a = Files.readAttributes(p, "unix:*", LinkOption.NOFOLLOW_LINKS);
        int mode = (Integer) a.get("mode");
        int type = mode & 0170000;
        boolean dirOrLink = type == 0040000 || type == 0120000;
        StringBuilder line =
            new StringBuilder(
                line(
                    root.relativize(p).toString(),
                    mode,
                    (Integer) a.get("uid"),
                    (Integer) a.get("gid"),
                    type == 0040000 ? 0 : (Integer) a.get("nlink"),
                    ((java.nio.file.attribute.FileTime) a.get("lastModifiedTime"))
                        .toInstant()
                        .getEpochSecond(),
                    (Long) a.get("rdev"),
                    dirOrLink ? 0 : (Long) a.get("size")));
        if (type == 0100000) {
          line.append(" sha256=").append(sha256(Files.readAllBytes(p)));
        }
        if (type == 0120000) {
          line.append(" -> ").append(Files.readSymbolicLink(p));
        }
        xattrs(line, getfattr(p));
        out.add(line.toString());
      }
    }
    out.sort(null);
    return out;
  }

  private static Map<String, byte[]> getfattr(Path p) throws IOException {
    Map<String, byte[]> out = new java.util.HashMap<>();
    Process g =
        new ProcessBuilder(
                "getfattr", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", p.toString())
            .redirectErrorStream(true)
            .start();
    String text;
    try (InputStream in = g.getInputStream()) {
      text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    for (String l : text.lines().toList()) {
      int eq = l.indexOf("=0x");
      if (eq > 0 && !l.startsWith("#")) {
        out.put(l.substring(0, eq), HexFormat.of().parseHex(l.substring(eq + 3)));
      }
    }
    return out;
  }
}
