package dev.skiff.casfs.store;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Named, immutable-by-convention blobs: packs of chunks, image indexes, refs.
 *
 * <p>Implementations need one ranged read; everything else a reader wants is built on it. Names are
 * relative, slash separated, made of {@code [A-Za-z0-9._:-]} segments; see {@link BlobNames}.
 * Implementations are thread safe.
 */
public interface BlobStore extends AutoCloseable {

  /**
   * Reads up to {@code length} bytes of blob {@code name} starting at {@code offset} into {@code
   * dst} (from its position). Returns the number of bytes read, which is short only at the end of
   * the blob.
   *
   * @throws BlobNotFoundException if there is no such blob
   */
  int read(String name, long offset, int length, ByteBuffer dst) throws IOException;

  /** Reads exactly {@code length} bytes or fails with an error that names the blob. */
  default ByteBuffer readFully(String name, long offset, int length) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(length);
    int n = read(name, offset, length, buf);
    if (n != length) {
      throw new IOException(
          "blob "
              + name
              + " is truncated: wanted "
              + length
              + " bytes at offset "
              + offset
              + ", got "
              + n);
    }
    return buf.flip();
  }

  /** Size of a blob, or empty if it does not exist. */
  Optional<Long> size(String name) throws IOException;

  /**
   * The whole of a small blob (a tag, an index, a trace), or empty if it does not exist. Remote
   * stores answer in one round trip, with no size lookup first.
   */
  default Optional<byte[]> readAll(String name) throws IOException {
    Optional<Long> size = size(name);
    if (size.isEmpty()) {
      return Optional.empty();
    }
    return Optional.of(readFully(name, 0, Math.toIntExact(size.get())).array());
  }

  default boolean exists(String name) throws IOException {
    return size(name).isPresent();
  }

  /**
   * Stores a blob atomically: readers see either the old blob or the whole new one, never a part.
   * Replaces an existing blob of that name.
   */
  void put(String name, InputStream content) throws IOException;

  /** Stores a local file as a blob; implementations may move or link rather than copy. */
  default void putFile(String name, Path file) throws IOException {
    try (InputStream in = java.nio.file.Files.newInputStream(file)) {
      put(name, in);
    }
  }

  /** Names of blobs under {@code prefix} (a folder-like prefix ending in '/'), sorted. */
  List<String> list(String prefix) throws IOException;

  /** Deletes a blob; returns false if it was not there. */
  boolean delete(String name) throws IOException;

  /**
   * A local file holding the whole blob, if this store keeps blobs as plain files (so that an index
   * can be memory-mapped in place instead of copied). Empty for remote stores.
   */
  default Optional<Path> localFile(String name) {
    return Optional.empty();
  }

  /** A short description for messages, such as {@code local:/var/lib/skiff/store}. */
  String describe();

  @Override
  default void close() throws IOException {}
}
