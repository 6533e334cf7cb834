package dev.skiff.casfs.store;

import dev.skiff.casfs.digest.Digest;
import java.util.regex.Pattern;

/** Where each kind of blob lives in a store, and the check every name passes. */
public final class BlobNames {
  private static final Pattern SEGMENT = Pattern.compile("[A-Za-z0-9._:+-]{1,200}");

  private BlobNames() {}

  public static String pack(Digest d) {
    return "packs/" + d.algorithm().label() + "/" + d.hex();
  }

  public static String packIndex(Digest d) {
    return pack(d) + ".idx";
  }

  public static String index(Digest d) {
    return "indexes/" + d.algorithm().label() + "/" + d.hex();
  }

  /**
   * An index as it travels to and from a bucket: zstd-compressed (a tenth to a quarter of the LMDB
   * file). Local stores keep the plain file, which is memory-mapped in place.
   */
  public static String compressedIndex(Digest d) {
    return index(d) + ".zst";
  }

  public static String ref(String name, String tag) {
    return "refs/" + name + "/" + tag;
  }

  /** Throws if {@code name} could escape the store or is not a well-formed blob name. */
  public static String check(String name) {
    if (name.isEmpty() || name.startsWith("/") || name.endsWith("/")) {
      throw new IllegalArgumentException("bad blob name '" + name + "'");
    }
    for (String seg : name.split("/", -1)) {
      if (!SEGMENT.matcher(seg).matches() || seg.equals(".") || seg.equals("..")) {
        throw new IllegalArgumentException("bad blob name '" + name + "' (segment '" + seg + "')");
      }
    }
    return name;
  }
}
