package dev.skiff.casfs.image;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarFile;

/** Files of an image container format (OCI layout, docker save) in a directory or a tar file. */
abstract class Archive implements Closeable {
  abstract String describe();

  abstract boolean exists(String path);

  abstract InputStream open(String path) throws IOException;

  abstract long size(String path) throws IOException;

  byte[] readSmall(String path) throws IOException {
    if (size(path) > (64 << 20)) {
      throw new ImportException(describe(), path, "metadata file is implausibly large");
    }
    try (InputStream in = open(path)) {
      return in.readAllBytes();
    }
  }

  /**
   * An image layout or docker-save directory. Every file is taken from inside it: a path whose real
   * location (symlinks followed, a symlinked subdirectory included) lies outside the directory does
   * not exist as far as the import is concerned.
   */
  static Archive directory(Path dir) throws IOException {
    Path real = dir.toRealPath();
    return new Archive() {
      private Path resolve(String path) throws ImportException {
        Path p = dir.resolve(path).normalize();
        if (!p.startsWith(dir)) {
          throw new ImportException(describe(), path, "path escapes the archive");
        }
        return p;
      }

      @Override
      String describe() {
        return dir.toString();
      }

      @Override
      boolean exists(String path) {
        try {
          Path p = resolve(path);
          return Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)
              && p.toRealPath().startsWith(real);
        } catch (IOException e) {
          return false;
        }
      }

      @Override
      InputStream open(String path) throws IOException {
        if (!exists(path)) {
          throw new ImportException(describe(), path, "file missing from the image layout");
        }
        return Files.newInputStream(resolve(path));
      }

      @Override
      long size(String path) throws IOException {
        if (!exists(path)) {
          throw new ImportException(describe(), path, "file missing from the image layout");
        }
        return Files.size(resolve(path));
      }

      @Override
      public void close() {}
    };
  }

  /** An uncompressed tar file (a docker save or OCI archive), read in place. */
  static Archive tar(Path file) throws IOException {
    TarFile tf;
    try {
      tf = new TarFile(file);
    } catch (IOException | RuntimeException e) {
      throw new ImportException(
          file.toString(), null, "not a readable tar archive: " + e.getMessage(), e);
    }
    Map<String, TarArchiveEntry> entries = new HashMap<>();
    for (TarArchiveEntry e : tf.getEntries()) {
      String n = e.getName();
      while (n.startsWith("./")) {
        n = n.substring(2);
      }
      if (e.isFile()) {
        entries.put(n, e);
      }
    }
    return new Archive() {
      @Override
      String describe() {
        return file.toString();
      }

      @Override
      boolean exists(String path) {
        return entries.containsKey(path);
      }

      private TarArchiveEntry entry(String path) throws ImportException {
        TarArchiveEntry e = entries.get(path);
        if (e == null) {
          throw new ImportException(describe(), path, "file missing from the archive");
        }
        return e;
      }

      @Override
      InputStream open(String path) throws IOException {
        return tf.getInputStream(entry(path));
      }

      @Override
      long size(String path) throws IOException {
        return entry(path).getSize();
      }

      @Override
      public void close() throws IOException {
        tf.close();
      }
    };
  }
}
