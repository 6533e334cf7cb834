package dev.skiff.casfs.store;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/** A store that passes every call to another; subclasses override what they observe or change. */
public abstract class ForwardingBlobStore implements BlobStore {
  private final BlobStore inner;

  protected ForwardingBlobStore(BlobStore inner) {
    this.inner = inner;
  }

  @Override
  public int read(String name, long offset, int length, ByteBuffer dst) throws IOException {
    return inner.read(name, offset, length, dst);
  }

  @Override
  public Optional<byte[]> readAll(String name) throws IOException {
    return inner.readAll(name);
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
