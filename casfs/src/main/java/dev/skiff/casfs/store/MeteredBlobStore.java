package dev.skiff.casfs.store;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.LongAdder;

/** Counts the ranged reads and bytes that pass through to the store below. */
public final class MeteredBlobStore implements BlobStore {
  private final BlobStore inner;
  private final LongAdder reads = new LongAdder();
  private final LongAdder bytesRead = new LongAdder();

  MeteredBlobStore(BlobStore inner) {
    this.inner = inner;
  }

  /** Ranged reads issued so far. */
  public long reads() {
    return reads.sum();
  }

  /** Bytes read so far. */
  public long bytesRead() {
    return bytesRead.sum();
  }

  public void resetCounters() {
    reads.reset();
    bytesRead.reset();
  }

  @Override
  public int read(String name, long offset, int length, ByteBuffer dst) throws IOException {
    reads.increment();
    int n = inner.read(name, offset, length, dst);
    bytesRead.add(n);
    return n;
  }

  @Override
  public Optional<Long> size(String name) throws IOException {
    return inner.size(name);
  }

  @Override
  public void put(String name, InputStream content) throws IOException {
    inner.put(name, content);
  }

  @Override
  public void putFile(String name, Path file) throws IOException {
    inner.putFile(name, file);
  }

  @Override
  public List<String> list(String prefix) throws IOException {
    return inner.list(prefix);
  }

  @Override
  public boolean delete(String name) throws IOException {
    return inner.delete(name);
  }

  @Override
  public Optional<Path> localFile(String name) {
    return inner.localFile(name);
  }

  @Override
  public String describe() {
    return inner.describe();
  }

  @Override
  public void close() throws IOException {
    inner.close();
  }
}
