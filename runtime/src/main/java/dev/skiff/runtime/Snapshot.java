package dev.skiff.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skiff.api.ImageRef;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A memory snapshot of a sandbox ({@code runsc checkpoint}): its processes and memory, caught after
 * an expensive start-up, to be restored as many fresh sandboxes. Tied to the image it ran on (by
 * index digest) and kept next to it: {@code $SKIFF_HOME/snapshots/ALG/INDEXHEX/NAME/}, holding
 * runsc's checkpoint files, the OCI spec it ran with, and {@code snapshot.json}; for an image from
 * a bucket, also in the bucket ({@code snapshots/ALG/INDEXHEX/NAME/}), so that any host of that
 * image restores it (fetched on first use).
 *
 * <p>runsc restores only what the same release on the same platform saved; both are recorded and
 * checked before a restore is tried.
 */
public record Snapshot(
    String name,
    String image,
    String digest,
    List<String> command,
    String created,
    String runscVersion,
    String platform,
    Path dir) {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");

  /** Where runsc's checkpoint files are. */
  public Path checkpointDir() {
    return dir.resolve("checkpoint");
  }

  /** Size of the checkpoint files in bytes. */
  public long bytes() throws IOException {
    try (Stream<Path> s = Files.walk(checkpointDir())) {
      return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    }
  }

  interface Checkpointer {
    void checkpoint(Path imageDir) throws IOException;
  }

  static String checkName(String name) {
    if (!NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(
          "bad snapshot name '" + name + "': letters, digits, '_', '.', '-' (up to 64)");
    }
    return name;
  }

  private static Path dirOf(SandboxRuntime rt, Digest d) {
    return rt.snapshotsDir().resolve(d.algorithm().label()).resolve(d.hex());
  }

  static Snapshot take(SandboxRuntime rt, Sandbox sb, String name, Path spec, Checkpointer c)
      throws IOException {
    checkName(name);
    Digest d = sb.imageDigest();
    Path parent = Files.createDirectories(dirOf(rt, d));
    Path tmp = Files.createTempDirectory(parent, ".taking-");
    try {
      c.checkpoint(Files.createDirectory(tmp.resolve("checkpoint")));
      Files.copy(spec, tmp.resolve("config.json"));
      Snapshot s =
          new Snapshot(
              name,
              sb.imageRef().toString(),
              d.toString(),
              sb.command(),
              Instant.now().toString(),
              rt.runsc().version(),
              rt.runsc().platform().flag(),
              parent.resolve(name));
      ObjectNode meta = JSON.valueToTree(s);
      meta.remove("dir");
      JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.resolve("snapshot.json").toFile(), meta);
      Path old = null;
      if (Files.exists(s.dir())) {
        old = parent.resolve(".replaced-" + name + "-" + System.nanoTime());
        Files.move(s.dir(), old, StandardCopyOption.ATOMIC_MOVE);
      }
      Files.move(tmp, s.dir(), StandardCopyOption.ATOMIC_MOVE);
      if (old != null) {
        deleteTree(old);
      }
      return s;
    } finally {
      deleteTree(tmp);
    }
  }

  static List<Snapshot> list(SandboxRuntime rt, String image) throws IOException {
    Digest d = resolve(rt, image);
    Path parent = dirOf(rt, d);
    java.util.Map<String, Snapshot> out = new java.util.TreeMap<>();
    if (Files.isDirectory(parent)) {
      try (Stream<Path> s = Files.list(parent)) {
        for (Path p : s.sorted().toList()) {
          if (!p.getFileName().toString().startsWith(".")
              && Files.exists(p.resolve("snapshot.json"))) {
            Snapshot snap = read(p);
            out.put(snap.name(), snap);
          }
        }
      }
    }
    try (BlobStore remote = rt.remoteStoreOf(ImageRef.parse(localName(image))).orElse(null)) {
      if (remote != null) {
        for (String blob : remote.list(prefix(d, null))) {
          if (blob.endsWith("/snapshot.json")) {
            ObjectNode meta = (ObjectNode) JSON.readTree(remote.readAll(blob).orElseThrow());
            String name = meta.path("name").asText();
            if (!out.containsKey(name)) {
              meta.put("dir", parent.resolve(name).toString());
              out.put(name, JSON.treeToValue(meta, Snapshot.class));
            }
          }
        }
      }
    }
    return new ArrayList<>(out.values());
  }

  static Snapshot find(SandboxRuntime rt, String image, String name) throws IOException {
    Digest d = resolve(rt, image);
    Path p = dirOf(rt, d).resolve(checkName(name));
    if (!Files.exists(p.resolve("snapshot.json"))) {
      try (BlobStore remote = rt.remoteStoreOf(ImageRef.parse(localName(image))).orElse(null)) {
        if (remote == null || !download(remote, d, name, p)) {
          throw new IOException(
              "no snapshot '" + name + "' of " + image + " (see skiff snapshot ls " + image + ")");
        }
      }
    }
    return read(p);
  }

  /** Blob names of an image's snapshots in its bucket: {@code snapshots/ALG/HEX/NAME/...}. */
  private static String prefix(Digest d, String name) {
    return BlobNames.snapshots(d, name);
  }

  /**
   * Copies a snapshot to the bucket its image came from, so that every host of that image can
   * restore it: the checkpoint files and the spec first, snapshot.json last (a snapshot without it
   * is incomplete and invisible).
   */
  void upload(BlobStore remote) throws IOException {
    Digest d = Digest.parse(digest);
    try (Stream<Path> files = Files.list(checkpointDir())) {
      for (Path f : files.sorted().toList()) {
        remote.putFile(prefix(d, name) + "checkpoint/" + f.getFileName(), f);
      }
    }
    remote.putFile(prefix(d, name) + "config.json", dir.resolve("config.json"));
    remote.putFile(prefix(d, name) + "snapshot.json", dir.resolve("snapshot.json"));
  }

  /**
   * Fetches snapshot {@code name} of image {@code d} from the bucket into {@code to}; false if
   * absent.
   */
  private static boolean download(BlobStore remote, Digest d, String name, Path to)
      throws IOException {
    Optional<byte[]> meta = remote.readAll(prefix(d, name) + "snapshot.json");
    if (meta.isEmpty()) {
      return false;
    }
    Files.createDirectories(to.getParent());
    Path tmp = Files.createTempDirectory(to.getParent(), ".fetching-");
    try {
      Path cp = Files.createDirectory(tmp.resolve("checkpoint"));
      for (String blob : remote.list(prefix(d, name) + "checkpoint/")) {
        fetch(remote, blob, cp.resolve(blob.substring(blob.lastIndexOf('/') + 1)));
      }
      fetch(remote, prefix(d, name) + "config.json", tmp.resolve("config.json"));
      Files.write(tmp.resolve("snapshot.json"), meta.get());
      Files.move(tmp, to, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      deleteTree(tmp);
    }
    return true;
  }

  /** A blob to a file in 16 MiB ranges (checkpoints can be larger than an array). */
  private static void fetch(BlobStore remote, String blob, Path file) throws IOException {
    long size =
        remote.size(blob).orElseThrow(() -> new IOException("snapshot blob " + blob + " vanished"));
    try (java.nio.channels.FileChannel out =
        java.nio.channels.FileChannel.open(
            file,
            java.nio.file.StandardOpenOption.CREATE_NEW,
            java.nio.file.StandardOpenOption.WRITE)) {
      for (long off = 0; off < size; off += 16 << 20) {
        java.nio.ByteBuffer b = remote.readFully(blob, off, (int) Math.min(16 << 20, size - off));
        while (b.hasRemaining()) {
          out.write(b);
        }
      }
    }
  }

  private static Snapshot read(Path p) throws IOException {
    ObjectNode meta = (ObjectNode) JSON.readTree(p.resolve("snapshot.json").toFile());
    meta.put("dir", p.toString());
    return JSON.treeToValue(meta, Snapshot.class);
  }

  private static String localName(String image) {
    return image.startsWith("s3://") ? ImageMount.splitImageUrl(image)[1] : image;
  }

  /** The index digest of NAME[:TAG] or s3://.../NAME[:TAG] (as pulled here). */
  private static Digest resolve(SandboxRuntime rt, String image) throws IOException {
    ImageRef ref = ImageRef.parse(localName(image));
    return rt.store()
        .resolve(ref)
        .orElseThrow(() -> new IOException("no image " + ref + " (see skiff images)"));
  }

  /** Removes this snapshot, here and from its image's bucket. */
  void delete(SandboxRuntime rt) throws IOException {
    deleteTree(dir);
    try (BlobStore remote = rt.remoteStoreOf(ImageRef.parse(image)).orElse(null)) {
      if (remote != null) {
        for (String blob : remote.list(prefix(Digest.parse(digest), name))) {
          remote.delete(blob);
        }
      }
    }
  }

  void checkRestorable(Digest mounted, Runsc runsc) throws IOException {
    if (!mounted.toString().equals(digest)) {
      throw new IOException(
          "snapshot '" + name + "' was taken on image " + digest + ", not " + mounted);
    }
    if (!runsc.version().equals(runscVersion) || !runsc.platform().flag().equals(platform)) {
      throw new IOException(
          "snapshot '"
              + name
              + "' was taken with runsc "
              + runscVersion
              + " on platform "
              + platform
              + "; this host has runsc "
              + runsc.version()
              + " on "
              + runsc.platform().flag()
              + ": take the snapshot again here (or run with --platform "
              + platform
              + ")");
    }
  }

  /** Whether the snapshot's sandbox had bind mounts (volumes, a warm init). */
  boolean hasBinds() throws IOException {
    for (var m : JSON.readTree(dir.resolve("config.json").toFile()).path("mounts")) {
      if (m.path("type").asText().equals("bind")) {
        return true;
      }
    }
    return false;
  }

  /**
   * The spec the snapshot ran with, its root moved to {@code rootfs} and each read-only bind's
   * source bound read-only again, in {@code binds}: the binds of the sandbox that took it went with
   * that sandbox. The source bound is the one the spec's annotation names (a snapshot taken before
   * there were annotations named the source itself).
   */
  byte[] specFor(Path rootfs, ReadOnlyBinds binds) throws IOException {
    ObjectNode spec = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
    ((ObjectNode) spec.path("root")).put("path", rootfs.toString());
    for (var m : spec.path("mounts")) {
      boolean readOnly = false;
      for (var o : m.path("options")) {
        readOnly |= o.asText().equals("ro");
      }
      if (m.path("type").asText().equals("bind") && readOnly) {
        String original =
            spec.path("annotations")
                .path(OciSpec.READ_ONLY_SOURCE + m.path("destination").asText())
                .asText(m.path("source").asText());
        ((ObjectNode) m).put("source", binds.add(Path.of(original)).toString());
      }
    }
    return OciSpec.json(spec);
  }

  private static void deleteTree(Path p) throws IOException {
    if (Files.exists(p)) {
      try (Stream<Path> s = Files.walk(p)) {
        for (Path f : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
          Files.deleteIfExists(f);
        }
      }
    }
  }
}
