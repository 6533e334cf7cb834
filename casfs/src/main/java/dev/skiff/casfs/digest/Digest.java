package dev.skiff.casfs.digest;

import java.util.Arrays;
import java.util.HexFormat;

/** A content digest: an algorithm and its bytes. Text form {@code algorithm:hex}. Immutable. */
public final class Digest implements Comparable<Digest> {
  private static final HexFormat HEX = HexFormat.of();

  private final DigestAlgorithm algorithm;
  private final byte[] bytes;
  private final int hash;

  public Digest(DigestAlgorithm algorithm, byte[] bytes) {
    if (bytes.length != algorithm.length()) {
      throw new IllegalArgumentException(
          algorithm.label()
              + " digest needs "
              + algorithm.length()
              + " bytes, got "
              + bytes.length);
    }
    this.algorithm = algorithm;
    this.bytes = bytes.clone();
    this.hash = Arrays.hashCode(bytes);
  }

  /** Parses {@code algorithm:hex}, as printed by {@link #toString()}. */
  public static Digest parse(String text) {
    int colon = text.indexOf(':');
    if (colon < 0) {
      throw new IllegalArgumentException("not a digest (want algorithm:hex): '" + text + "'");
    }
    DigestAlgorithm algorithm = DigestAlgorithm.fromLabel(text.substring(0, colon));
    byte[] bytes;
    try {
      bytes = HEX.parseHex(text.substring(colon + 1));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("not a digest (bad hex): '" + text + "'", e);
    }
    return new Digest(algorithm, bytes);
  }

  public DigestAlgorithm algorithm() {
    return algorithm;
  }

  /** A copy of the digest bytes. */
  public byte[] bytes() {
    return bytes.clone();
  }

  public String hex() {
    return HEX.formatHex(bytes);
  }

  /** First 12 hex digits, for people. */
  public String shortHex() {
    return hex().substring(0, 12);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Digest d && d.algorithm == algorithm && Arrays.equals(d.bytes, bytes);
  }

  @Override
  public int hashCode() {
    return hash;
  }

  @Override
  public int compareTo(Digest o) {
    int c = algorithm.compareTo(o.algorithm);
    return c != 0 ? c : Arrays.compareUnsigned(bytes, o.bytes);
  }

  @Override
  public String toString() {
    return algorithm.label() + ":" + hex();
  }
}
