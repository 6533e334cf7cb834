package dev.skiff.sdk.tutorial;

/** A function of bytes: what it is given, reversed. */
public final class Bytes {
  private Bytes() {}

  public static byte[] reverse(byte[] in) {
    byte[] out = new byte[in.length];
    for (int i = 0; i < in.length; i++) {
      out[i] = in[in.length - 1 - i];
    }
    return out;
  }
}
