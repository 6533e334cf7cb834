package dev.skiff.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.digest.Digest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A memory snapshot of a sandbox ({@code runsc checkpoint}): its processes and memory, caught after
 * an expensive start-up, to be restored as many fresh sandboxes. Tied to the image it ran on (by
 * index digest) and kept next to it (see {@link SnapshotStore}).
 *
 * <p>runsc restores only what the same release on the same platform saved; both are recorded and
 * checked before a restore is tried ({@link #checkRestorable}).
 *
 * @param image the image as it was named when the snapshot was taken ({@code NAME:TAG} or {@code
 *     s3://...}), so that a restore on another host mounts it from the same place
 * @param digest the image's index digest
 * @param dir where its files are on this host (fetched there on first use if it came from a bucket)
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

  /** The image to mount for a restore. */
  public ImageSpec imageSpec() {
    return ImageSpec.parse(image);
  }

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

  /** Returns {@code name} if it can name a snapshot; throws otherwise. */
  public static String checkName(String name) {
    if (!NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(
          "bad snapshot name '" + name + "': letters, digits, '_', '.', '-' (up to 64)");
    }
    return name;
  }

  /**
   * Throws unless this snapshot can be restored on the image {@code mounted} by {@code
   * runscVersion} on {@code platform}: runsc restores only what the same release on the same
   * platform saved.
   */
  void checkRestorable(Digest mounted, String runscVersion, String platform) throws IOException {
    if (!mounted.toString().equals(digest)) {
      throw new IOException(
          "snapshot '" + name + "' was taken on image " + digest + ", not " + mounted);
    }
    if (!runscVersion.equals(this.runscVersion) || !platform.equals(this.platform)) {
      throw new IOException(
          "snapshot '"
              + name
              + "' was taken with runsc "
              + this.runscVersion
              + " on platform "
              + this.platform
              + "; this host has runsc "
              + runscVersion
              + " on "
              + platform
              + ": take the snapshot again here, or restore it on the platform it was taken on");
    }
  }

  /** Whether the snapshot's sandbox had bind mounts (volumes, a warm init). */
  /**
   * {@code o} with the memory and CPU limits the snapshot's sandbox had where {@code o} sets none:
   * a restore keeps them unless it is given its own.
   */
  SandboxOptions withLimits(SandboxOptions o) throws IOException {
    if (o.memoryBytes() > 0 || o.cpus() > 0) {
      return o;
    }
    var res = JSON.readTree(dir.resolve("config.json").toFile()).path("linux").path("resources");
    long memory = res.path("memory").path("limit").asLong(0);
    long quota = res.path("cpu").path("quota").asLong(0);
    long period = res.path("cpu").path("period").asLong(0);
    SandboxOptions.Builder b = o.toBuilder();
    if (memory > 0) {
      b.memory(memory);
    }
    if (quota > 0 && period > 0) {
      b.cpus((double) quota / period);
    }
    return b.build();
  }

  boolean hasBinds() throws IOException {
    for (var m : JSON.readTree(dir.resolve("config.json").toFile()).path("mounts")) {
      if (m.path("type").asText().equals("bind")) {
        return true;
      }
    }
    return false;
  }

  /**
   * The spec the snapshot ran with, its root moved to {@code rootfs}, its memory and CPU limits
   * those of {@code limits} under this sandbox's own {@code cgroupsPath}, and its binds pointed at
   * this host: a bind whose destination one of {@code volumes} names takes that volume's source
   * (the restoring host's copy of the same content, say a function's code under another home), any
   * other keeps the source the snapshot was taken with. Each read-only source is bound read-only
   * again, in {@code binds}: the binds of the sandbox that took it went with that sandbox. The
   * original source is the one the spec's annotation names (a snapshot taken before there were
   * annotations named the source itself).
   */
  byte[] specFor(
      Path rootfs,
      ReadOnlyBinds binds,
      List<SandboxOptions.Volume> volumes,
      SandboxOptions limits,
      String cgroupsPath)
      throws IOException {
    ObjectNode spec = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
    ((ObjectNode) spec.path("root")).put("path", rootfs.toString());
    if (spec.path("linux") instanceof ObjectNode linux) {
      OciSpec.limits(linux, limits, cgroupsPath);
    }
    Map<String, Path> here = new HashMap<>();
    for (SandboxOptions.Volume v : volumes) {
      here.put(v.target(), v.source());
    }
    for (var m : spec.path("mounts")) {
      if (!m.path("type").asText().equals("bind")) {
        continue;
      }
      boolean readOnly = false;
      for (var o : m.path("options")) {
        readOnly |= o.asText().equals("ro");
      }
      String destination = m.path("destination").asText();
      Path source =
          here.getOrDefault(
              destination,
              Path.of(
                  spec.path("annotations")
                      .path(OciSpec.READ_ONLY_SOURCE + destination)
                      .asText(m.path("source").asText())));
      ((ObjectNode) m).put("source", (readOnly ? binds.add(source) : source).toString());
      here.remove(destination);
    }
    if (!here.isEmpty()) {
      throw new IOException(
          "snapshot '"
              + name()
              + "' has no volume at "
              + String.join(", ", here.keySet())
              + ": a restore can point the snapshot's own volumes at other host paths, not add new"
              + " ones");
    }
    return OciSpec.json(spec);
  }
}
