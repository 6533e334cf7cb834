package dev.skiff.casfs.store;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Blobs as files under one directory. Writes go to {@code .tmp/} and are fsynced and renamed into
 * place, so a crash leaves either nothing or a whole blob. The channels of ranged reads are kept
 * open, since packs are read many times and never change; whole blobs are read and closed.
 */
final class LocalDirStore implements BlobStore {
  private final Path root;
  private final Path tmp;
  private final ConcurrentHashMap<String, FileChannel> channels = new ConcurrentHashMap<>();

  LocalDirStore(Path root) throws IOException {
    this.root = root.toAbsolutePath().normalize();
    this.tmp = this.root.resolve(".tmp");
    Files.createDirectories(tmp);
  }

  private Path path(String name) {
    return root.resolve(BlobNames.check(name));
  }

  private FileChannel channel(String name) throws IOException {
    FileChannel ch = channels.get(name);
    if (ch != null) {
      return ch;
    }
    try {
      ch = FileChannel.open(path(name), StandardOpenOption.READ);
    } catch (NoSuchFileException e) {
      throw new BlobNotFoundException(describe(), name);
    }
    FileChannel prev = channels.putIfAbsent(name, ch);
    if (prev != null) {
      ch.close();
      return prev;
    }
    return ch;
  }

  @Override
  public int read(String name, long offset, int length, ByteBuffer dst) throws IOException {
    FileChannel ch = channel(name);
    int total = 0;
    ByteBuffer window = dst.slice(dst.position(), Math.min(length, dst.remaining()));
    while (window.hasRemaining()) {
      int n = ch.read(window, offset + total);
      if (n < 0) {
        break;
      }
      total += n;
    }
    dst.position(dst.position() + total);
    return total;
  }

  /**
   * A whole blob (a tag, an index, a chunk list), read and closed: only ranged reads (packs) keep
   * their channel open, or a daemon that reads many tags would hold a descriptor for each.
   */
  @Override
  public Optional<byte[]> readAll(String name) throws IOException {
    try {
      return Optional.of(Files.readAllBytes(path(name)));
    } catch (NoSuchFileException e) {
      return Optional.empty();
    }
  }

  @Override
  public Optional<Long> size(String name) throws IOException {
    try {
      return Optional.of(Files.size(path(name)));
    } catch (NoSuchFileException e) {
      return Optional.empty();
    }
  }

  @Override
  public void put(String name, InputStream content) throws IOException {
    Path t = tmp.resolve(UUID.randomUUID().toString());
    try {
      try (FileChannel out =
          FileChannel.open(t, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        byte[] buf = new byte[1 << 16];
        int n;
        while ((n = content.read(buf)) > 0) {
          ByteBuffer b = ByteBuffer.wrap(buf, 0, n);
          while (b.hasRemaining()) {
            out.write(b);
          }
        }
        out.force(true);
      }
      moveIntoPlace(t, name);
    } finally {
      Files.deleteIfExists(t);
    }
  }

  @Override
  public void putFile(String name, Path file) throws IOException {
    Path t = tmp.resolve(UUID.randomUUID().toString());
    try {
      try {
        Files.createLink(t, file);
      } catch (IOException | UnsupportedOperationException e) {
        Files.copy(file, t);
      }
      try (FileChannel ch = FileChannel.open(t, StandardOpenOption.WRITE)) {
        ch.force(true);
      }
      moveIntoPlace(t, name);
    } finally {
      Files.deleteIfExists(t);
    }
  }

  private void moveIntoPlace(Path t, String name) throws IOException {
    Path dst = path(name);
    Files.createDirectories(dst.getParent());
    try {
      Files.move(t, dst, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      throw new IOException("store " + root + " cannot rename atomically", e);
    }
    FileChannel stale = channels.remove(name);
    if (stale != null) {
      stale.close();
    }
  }

  @Override
  public List<String> list(String prefix) throws IOException {
    List<String> out = new ArrayList<>();
    Path dir = prefix.isEmpty() ? root : root.resolve(prefix);
    if (!Files.isDirectory(dir)) {
      return out;
    }
    collect(dir, out);
    out.sort(null);
    return out;
  }

  private void collect(Path dir, List<String> out) throws IOException {
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
      for (Path p : ds) {
        if (p.equals(tmp)) {
          continue;
        }
        if (Files.isDirectory(p)) {
          collect(p, out);
        } else {
          out.add(root.relativize(p).toString());
        }
      }
    }
  }

  @Override
  public boolean delete(String name) throws IOException {
    FileChannel ch = channels.remove(name);
    if (ch != null) {
      ch.close();
    }
    return Files.deleteIfExists(path(name));
  }

  @Override
  public Optional<Path> localFile(String name) {
    Path p = path(name);
    return Files.isRegularFile(p) ? Optional.of(p) : Optional.empty();
  }

  @Override
  public String describe() {
    return "local:" + root;
  }

  @Override
  public void close() throws IOException {
    for (FileChannel ch : channels.values()) {
      ch.close();
    }
    channels.clear();
  }
}
