package dev.skiff.casfs.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Optional;
import java.util.concurrent.atomic.LongAdder;

/** Counts the ranged reads and bytes that pass through to the store below. */
public final class MeteredBlobStore extends ForwardingBlobStore {
  private final LongAdder reads = new LongAdder();
  private final LongAdder bytesRead = new LongAdder();

  MeteredBlobStore(BlobStore inner) {
    super(inner);
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
    int n = super.read(name, offset, length, dst);
    bytesRead.add(n);
    return n;
  }

  @Override
  public Optional<byte[]> readAll(String name) throws IOException {
    reads.increment();
    Optional<byte[]> got = super.readAll(name);
    got.ifPresent(b -> bytesRead.add(b.length));
    return got;
  }
}
