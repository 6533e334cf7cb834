package dev.skiff.casfs.store;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.digest.Digest;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The one place that formats and parses blob names, and the check every name passes. A store (local
 * or a bucket) holds:
 *
 * <pre>
 * packs/ALG/HEX                 chunks, appended; HEX is the digest of its chunk list
 * packs/ALG/HEX.idx             the pack's chunk list (digest, offset, lengths of each chunk)
 * indexes/ALG/HEX               an image index (LMDB), named by its digest
 * indexes/ALG/HEX.zst           the same, zstd-compressed: how an index travels to and from buckets
 * refs/NAME/TAG                 a tag: a JSON document naming an index
 * traces/ALG/HEX[.KEY]          start-up traces of the image whose index is HEX
 * snapshots/ALG/HEX/NAME/...    memory snapshots of sandboxes on that image (in buckets)
 * </pre>
 */
public final class BlobNames {
  public static final String PACKS = "packs/";
  public static final String INDEXES = "indexes/";
  public static final String REFS = "refs/";
  public static final String TRACES = "traces/";
  public static final String SNAPSHOTS = "snapshots/";

  private static final Pattern SEGMENT = Pattern.compile("[A-Za-z0-9._:+-]{1,200}");
  private static final Pattern KEY = Pattern.compile("[A-Za-z0-9_.-]{1,64}");
  private static final String CHUNK_LIST = ".idx";
  private static final String COMPRESSED = ".zst";

  private BlobNames() {}

  public static String pack(Digest d) {
    return PACKS + d.algorithm().label() + "/" + d.hex();
  }

  public static String packIndex(Digest d) {
    return pack(d) + CHUNK_LIST;
  }

  /** The chunk list of the pack named {@code pack}. */
  public static String chunkListOf(String pack) {
    return pack + CHUNK_LIST;
  }

  /** Whether {@code name} is a pack's chunk list rather than a pack. */
  public static boolean isChunkList(String name) {
    return name.startsWith(PACKS) && name.endsWith(CHUNK_LIST);
  }

  /** The pack a pack or chunk-list blob belongs to. */
  public static String packOf(String name) {
    return isChunkList(name) ? name.substring(0, name.length() - CHUNK_LIST.length()) : name;
  }

  /**
   * The digest a pack is named by (that of its chunk list), or empty for a name that is not a pack.
   */
  public static Optional<Digest> packDigest(String pack) {
    return digestIn(packOf(pack), PACKS, "");
  }

  public static String index(Digest d) {
    return INDEXES + d.algorithm().label() + "/" + d.hex();
  }

  /**
   * An index as it travels to and from a bucket: zstd-compressed (a tenth to a quarter of the LMDB
   * file). Local stores keep the plain file, which is memory-mapped in place.
   */
  public static String compressedIndex(Digest d) {
    return index(d) + COMPRESSED;
  }

  /** The digest a plain index blob is named by, or empty for any other name. */
  public static Optional<Digest> indexDigest(String name) {
    return digestIn(name, INDEXES, "");
  }

  public static String ref(String name, String tag) {
    return REFS + name + "/" + tag;
  }

  public static String ref(ImageRef ref) {
    return ref(ref.name(), ref.tag());
  }

  /** The tag a {@code refs/} blob is, or empty where the name is not a valid tag. */
  public static Optional<ImageRef> refOf(String name) {
    if (!name.startsWith(REFS)) {
      return Optional.empty();
    }
    String rest = name.substring(REFS.length());
    int slash = rest.lastIndexOf('/');
    try {
      return slash <= 0
          ? Optional.empty()
          : Optional.of(new ImageRef(rest.substring(0, slash), rest.substring(slash + 1)));
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
  }

  /**
   * The trace of the image whose index is {@code index}: its main one ({@code key} null) or one of
   * several start profiles.
   */
  public static String trace(Digest index, String key) {
    checkTraceKey(key);
    return TRACES + index.algorithm().label() + "/" + index.hex() + (key == null ? "" : "." + key);
  }

  /** Returns {@code key} (null for the main trace) if it can name a trace; throws otherwise. */
  public static String checkTraceKey(String key) {
    if (key != null && !KEY.matcher(key).matches()) {
      throw new IllegalArgumentException(
          "bad trace key '" + key + "': letters, digits, '_', '.', '-' (up to 64)");
    }
    return key;
  }

  /** Whether {@code name} is a trace (main or keyed) of the image whose index is {@code index}. */
  public static boolean isTraceOf(String name, Digest index) {
    String main = trace(index, null);
    return name.equals(main) || name.startsWith(main + ".");
  }

  /** The index a trace blob belongs to, or empty for any other name. */
  public static Optional<Digest> traceIndex(String name) {
    if (!name.startsWith(TRACES)) {
      return Optional.empty();
    }
    String[] p = name.substring(TRACES.length()).split("/");
    if (p.length != 2) {
      return Optional.empty();
    }
    int dot = p[1].indexOf('.');
    return parse(p[0], dot < 0 ? p[1] : p[1].substring(0, dot));
  }

  /**
   * The prefix of the snapshots of the image whose index is {@code index} in a bucket; with a
   * {@code name}, of that one snapshot ({@code snapshots/ALG/HEX/NAME/}).
   */
  public static String snapshots(Digest index, String name) {
    return SNAPSHOTS
        + index.algorithm().label()
        + "/"
        + index.hex()
        + "/"
        + (name == null ? "" : name + "/");
  }

  /** The index a snapshot blob belongs to, or empty for any other name. */
  public static Optional<Digest> snapshotIndex(String name) {
    if (!name.startsWith(SNAPSHOTS)) {
      return Optional.empty();
    }
    String[] p = name.substring(SNAPSHOTS.length()).split("/");
    return p.length < 2 ? Optional.empty() : parse(p[0], p[1]);
  }

  /** Parses {@code PREFIX ALG/HEX SUFFIX} into a digest. */
  private static Optional<Digest> digestIn(String name, String prefix, String suffix) {
    if (!name.startsWith(prefix) || !name.endsWith(suffix)) {
      return Optional.empty();
    }
    String[] p = name.substring(prefix.length(), name.length() - suffix.length()).split("/");
    return p.length == 2 ? parse(p[0], p[1]) : Optional.empty();
  }

  private static Optional<Digest> parse(String algorithm, String hex) {
    try {
      return Optional.of(Digest.parse(algorithm + ":" + hex));
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
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
