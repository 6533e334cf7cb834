package dev.skiff.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skiff.casfs.ImageRef;
import dev.skiff.casfs.digest.Digest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A memory snapshot of a sandbox ({@code runsc checkpoint}): its processes and memory, caught
 * after an expensive start-up, to be restored as many fresh sandboxes. Tied to the image it ran
 * on (by index digest) and kept next to it: {@code $SKIFF_HOME/snapshots/ALG/INDEXHEX/NAME/},
 * holding runsc's checkpoint files, the OCI spec it ran with, and {@code snapshot.json}.
 *
 * <p>runsc restores only what the same release on the same platform saved; both are recorded and
 * checked before a restore is tried.
 */
public record Snapshot(String name, String image, String digest, List<String> command, String created,
    String runscVersion, String platform, Path dir) {
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
      throw new IllegalArgumentException("bad snapshot name '" + name + "': letters, digits, '_', '.', '-' (up to 64)");
    }
    return name;
  }

  private static Path dirOf(SandboxRuntime rt, Digest d) {
    return rt.snapshotsDir().resolve(d.algorithm().label()).resolve(d.hex());
  }

  static Snapshot take(SandboxRuntime rt, Sandbox sb, String name, Path spec, Checkpointer c) throws IOException {
    checkName(name);
    Digest d = sb.imageDigest();
    Path parent = Files.createDirectories(dirOf(rt, d));
    Path tmp = Files.createTempDirectory(parent, ".taking-");
    try {
      c.checkpoint(Files.createDirectory(tmp.resolve("checkpoint")));
      Files.copy(spec, tmp.resolve("config.json"));
      Snapshot s = new Snapshot(name, sb.imageRef().toString(), d.toString(), sb.command(), Instant.now().toString(),
          rt.runsc().version(), rt.runsc().platform().flag(), parent.resolve(name));
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
    List<Snapshot> out = new ArrayList<>();
    if (Files.isDirectory(parent)) {
      try (Stream<Path> s = Files.list(parent)) {
        for (Path p : s.sorted().toList()) {
          if (!p.getFileName().toString().startsWith(".") && Files.exists(p.resolve("snapshot.json"))) {
            out.add(read(p));
          }
        }
      }
    }
    return out;
  }

  static Snapshot find(SandboxRuntime rt, String image, String name) throws IOException {
    Path p = dirOf(rt, resolve(rt, image)).resolve(checkName(name));
    if (!Files.exists(p.resolve("snapshot.json"))) {
      throw new IOException("no snapshot '" + name + "' of " + image + " (see skiff snapshot ls " + image + ")");
    }
    return read(p);
  }

  private static Snapshot read(Path p) throws IOException {
    ObjectNode meta = (ObjectNode) JSON.readTree(p.resolve("snapshot.json").toFile());
    meta.put("dir", p.toString());
    return JSON.treeToValue(meta, Snapshot.class);
  }

  /** The index digest of NAME[:TAG] or s3://.../NAME[:TAG] (as pulled here). */
  private static Digest resolve(SandboxRuntime rt, String image) throws IOException {
    String local = image.startsWith("s3://") ? ImageMount.splitImageUrl(image)[1] : image;
    ImageRef ref = ImageRef.parse(local);
    return rt.store().resolve(ref).orElseThrow(() -> new IOException("no image " + ref + " (see skiff images)"));
  }

  /** Removes this snapshot. */
  public void delete() throws IOException {
    deleteTree(dir);
  }

  void checkRestorable(Digest mounted, Runsc runsc) throws IOException {
    if (!mounted.toString().equals(digest)) {
      throw new IOException("snapshot '" + name + "' was taken on image " + digest + ", not " + mounted);
    }
    if (!runsc.version().equals(runscVersion) || !runsc.platform().flag().equals(platform)) {
      throw new IOException("snapshot '" + name + "' was taken with runsc " + runscVersion + " on platform " + platform
          + "; this host has runsc " + runsc.version() + " on " + runsc.platform().flag()
          + ": take the snapshot again here (or run with --platform " + platform + ")");
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

  /** The spec the snapshot ran with, its root moved to {@code rootfs}. */
  byte[] specFor(Path rootfs) throws IOException {
    ObjectNode spec = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
    ((ObjectNode) spec.path("root")).put("path", rootfs.toString());
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
