package dev.skiff.scheduler;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;

/**
 * A function's code as it travels: a zip of a directory, made the same way every time (sorted
 * entries, fixed times), so the same code has the same digest and redeploying unchanged code stores
 * nothing new. Workers fetch a bundle once by digest and unpack it where containers bind it
 * read-only.
 *
 * <p>Unpacking trusts nothing in the zip: only plain relative paths (no {@code ..}, no absolute
 * paths, no links), at most {@link #MAX_FILES} files and {@link #MAX_BYTES} bytes unpacked.
 */
public final class CodeBundle {
  /** The most a bundle may weigh, packed or unpacked. */
  public static final long MAX_BYTES = 64L << 20;

  public static final int MAX_FILES = 10_000;

  private static final FileTime EPOCH = FileTime.fromMillis(315532800000L); // 1980-01-01, zip's own

  private CodeBundle() {}

  /**
   * Zips the regular files under {@code dir}, skipping {@code __pycache__}, {@code .git} and {@code
   * *.pyc}.
   */
  public static byte[] pack(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new IOException("code directory " + dir + " does not exist");
    }
    List<Path> files;
    try (Stream<Path> s = Files.walk(dir)) {
      files =
          s.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS))
              .filter(p -> !skipped(dir.relativize(p)))
              .sorted()
              .toList();
    }
    if (files.isEmpty()) {
      throw new IOException("code directory " + dir + " has no files");
    }
    if (files.size() > MAX_FILES) {
      throw new IOException(
          dir + " has " + files.size() + " files, over the " + MAX_FILES + " a bundle may hold");
    }
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
      for (Path f : files) {
        ZipEntry e = new ZipEntry(dir.relativize(f).toString().replace('\\', '/'));
        e.setLastModifiedTime(EPOCH);
        zip.putNextEntry(e);
        Files.copy(f, zip);
        zip.closeEntry();
        if (bytes.size() > MAX_BYTES) {
          throw new IOException(
              "the code in " + dir + " is over " + (MAX_BYTES >> 20) + " MiB zipped");
        }
      }
    }
    return bytes.toByteArray();
  }

  private static boolean skipped(Path rel) {
    for (Path part : rel) {
      String n = part.toString();
      if (n.equals("__pycache__") || n.equals(".git")) {
        return true;
      }
    }
    return rel.toString().endsWith(".pyc");
  }

  /** {@code sha256:HEX} of a bundle. */
  public static String digest(byte[] zip) {
    try {
      return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(zip));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Checks that {@code zip} is a bundle that unpacks safely and returns its digest.
   *
   * @throws IllegalArgumentException saying what is wrong
   */
  public static String check(byte[] zip) {
    if (zip.length > MAX_BYTES) {
      throw new IllegalArgumentException("the code bundle is over " + (MAX_BYTES >> 20) + " MiB");
    }
    try {
      unpack(new ByteArrayInputStream(zip), null);
    } catch (IOException e) {
      throw new IllegalArgumentException("bad code bundle: " + e.getMessage());
    }
    return digest(zip);
  }

  /**
   * Checks that {@code jar} is a zip of at most {@link #MAX_BYTES} with at least one entry, and
   * returns its digest. A jar is never unpacked: the JVM in the container reads it.
   *
   * @throws IllegalArgumentException saying what is wrong
   */
  public static String checkJar(byte[] jar) {
    if (jar.length > MAX_BYTES) {
      throw new IllegalArgumentException(
          "a jar of "
              + (jar.length >> 20)
              + " MiB is over the "
              + (MAX_BYTES >> 20)
              + " MiB allowed");
    }
    try (ZipInputStream zip = new ZipInputStream(new ByteArrayInputStream(jar))) {
      if (zip.getNextEntry() == null) {
        throw new IllegalArgumentException("not a jar: it is not a zip, or holds nothing");
      }
    } catch (IOException e) {
      throw new IllegalArgumentException("not a jar: " + e.getMessage());
    }
    return digest(jar);
  }

  /**
   * Unpacks a bundle into {@code dir} (which must not exist), through a temporary directory next to
   * it, so a half-unpacked bundle is never seen.
   */
  public static void unpack(byte[] zip, Path dir) throws IOException {
    Path tmp = Files.createTempDirectory(dir.getParent(), ".unpack-");
    try {
      unpack(new ByteArrayInputStream(zip), tmp);
      Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      if (Files.exists(tmp)) {
        try (Stream<Path> s = Files.walk(tmp)) {
          for (Path p : s.sorted((a, b) -> b.compareTo(a)).toList()) {
            Files.deleteIfExists(p);
          }
        }
      }
    }
  }

  /** Reads every entry, checking it; writes them under {@code into} unless it is null. */
  private static void unpack(InputStream in, Path into) throws IOException {
    long total = 0;
    int files = 0;
    Set<String> seen = new HashSet<>();
    try (ZipInputStream zip = new ZipInputStream(in)) {
      for (ZipEntry e; (e = zip.getNextEntry()) != null; ) {
        String name = e.getName();
        List<String> parts = new ArrayList<>(List.of(name.split("/", -1)));
        if (name.isEmpty()
            || name.startsWith("/")
            || name.contains("\\")
            || name.indexOf('\0') >= 0
            || parts.stream().anyMatch(p -> p.equals("..") || p.equals("."))) {
          throw new IOException("entry '" + name + "' is not a plain relative path");
        }
        if (e.isDirectory()) {
          continue;
        }
        if (parts.stream().anyMatch(String::isEmpty)) {
          throw new IOException("entry '" + name + "' is not a plain relative path");
        }
        if (!seen.add(name)) {
          throw new IOException("entry '" + name + "' appears twice");
        }
        if (++files > MAX_FILES) {
          throw new IOException("more than " + MAX_FILES + " files");
        }
        OutputStream out =
            into == null ? OutputStream.nullOutputStream() : create(into.resolve(name));
        try (out) {
          byte[] buf = new byte[64 << 10];
          for (int n; (n = zip.read(buf)) > 0; ) {
            total += n;
            if (total > MAX_BYTES) {
              throw new IOException("over " + (MAX_BYTES >> 20) + " MiB unpacked");
            }
            out.write(buf, 0, n);
          }
        }
      }
    }
    if (files == 0) {
      throw new IOException("it is not a zip, or holds no files");
    }
  }

  private static OutputStream create(Path file) throws IOException {
    Files.createDirectories(file.getParent());
    return Files.newOutputStream(file);
  }
}
