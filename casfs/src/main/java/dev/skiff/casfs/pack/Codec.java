package dev.skiff.casfs.pack;

import com.github.luben.zstd.Zstd;
import java.io.IOException;

/** How a chunk's bytes are stored in a pack. */
public enum Codec {
  NONE(0),
  ZSTD(1);

  private final int id;

  Codec(int id) {
    this.id = id;
  }

  public int id() {
    return id;
  }

  public static Codec of(int id) {
    for (Codec c : values()) {
      if (c.id == id) {
        return c;
      }
    }
    throw new IllegalArgumentException("unknown chunk codec " + id);
  }

  /** Restores the plain bytes of a stored chunk. */
  public byte[] decode(byte[] stored, int plainLength) throws IOException {
    return switch (this) {
      case NONE -> stored;
      case ZSTD -> {
        byte[] out = new byte[plainLength];
        long n = Zstd.decompressByteArray(out, 0, plainLength, stored, 0, stored.length);
        if (Zstd.isError(n) || n != plainLength) {
          throw new IOException(
              "zstd chunk does not decompress to "
                  + plainLength
                  + " bytes: "
                  + (Zstd.isError(n) ? Zstd.getErrorName(n) : n + " bytes"));
        }
        yield out;
      }
    };
  }
}
