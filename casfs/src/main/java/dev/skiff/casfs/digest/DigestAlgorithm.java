package dev.skiff.casfs.digest;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import net.openhft.hashing.LongTupleHashFunction;

/**
 * The content digests Skiff names chunks, packs and indexes by.
 *
 * <p>{@link #XXH3_128} is the default: it hashes at memory speed, so verifying every fetched chunk
 * costs nothing measurable. {@link #SHA256} is for stores shared by parties that do not trust each
 * other. A digest's text form carries the algorithm name, like OCI's {@code sha256:...}.
 */
public enum DigestAlgorithm {
  XXH3_128("xxh3-128", 16) {
    @Override
    public Digest digest(ByteBuffer data) {
      long[] h = XXH3.hashBytes(data.duplicate());
      byte[] out = new byte[16];
      ByteBuffer.wrap(out).putLong(h[1]).putLong(h[0]);
      return new Digest(this, out);
    }
  },
  SHA256("sha256", 32) {
    @Override
    public Digest digest(ByteBuffer data) {
      try {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        md.update(data.duplicate());
        return new Digest(this, md.digest());
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException("SHA-256 missing from this JDK", e);
      }
    }
  };

  private static final LongTupleHashFunction XXH3 = LongTupleHashFunction.xx128();

  private final String label;
  private final int length;

  DigestAlgorithm(String label, int length) {
    this.label = label;
    this.length = length;
  }

  /** Digests the remaining bytes of {@code data} without moving its position. */
  public abstract Digest digest(ByteBuffer data);

  public Digest digest(byte[] data, int offset, int length) {
    return digest(ByteBuffer.wrap(data, offset, length));
  }

  public Digest digest(byte[] data) {
    return digest(data, 0, data.length);
  }

  /** The name used in a digest's text form, for example {@code xxh3-128}. */
  public String label() {
    return label;
  }

  /** Length of a digest in bytes. */
  public int length() {
    return length;
  }

  public static DigestAlgorithm fromLabel(String label) {
    for (DigestAlgorithm a : values()) {
      if (a.label.equals(label)) {
        return a;
      }
    }
    throw new IllegalArgumentException(
        "unknown digest algorithm '" + label + "' (known: xxh3-128, sha256)");
  }
}
