package dev.skiff.runtime;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.S3Location;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import java.util.stream.Stream;

/**
 * Runs processes in gVisor sandboxes whose root filesystem is a casfs mount of an image, served by
 * this process. One per process; thread safe.
 *
 * <pre>{@code
 * try (ImageStore store = ImageStore.open(home);
 *     SandboxRuntime rt = SandboxRuntime.open(store, SandboxRuntime.Config.defaults());
 *     Sandbox sb = rt.create("myimage:1", SandboxOptions.defaults())) {
 *   SandboxProcess p = sb.exec(List.of("python3", "-c", "print('hi')"), Sandbox.Exec.defaults());
 *   p.pipeTo(System.out, System.err);
 *   int code = p.waitFor();
 * }
 * }</pre>
 *
 * <p>State lives under {@code $SKIFF_HOME/run}: runsc's own ({@code runsc/}) and one directory per
 * sandbox ({@code sandboxes/ID/}: who owns it, its OCI bundle, the mountpoint, the read-only binds
 * its read-only volumes are served from ({@code ro/}), runsc's logs). {@link #open} cleans what
 * dead owners left: their sandboxes, their mounts.
 */
public final class SandboxRuntime implements AutoCloseable {
  private static final SecureRandom RANDOM = new SecureRandom();

  /**
   * @param runsc runsc binary, or null to find it ($SKIFF_RUNSC, the PATH)
   * @param platform auto, systrap, ptrace or kvm
   * @param remotes how to reach buckets (null: as the AWS tools would, from the environment)
   * @param mount how images are mounted (prefetch, caches)
   * @param notices where messages for a person go (what was cleaned up, limits not enforced)
   * @param shareMounts offer this runtime's mounts to other processes (see {@link
   *     #withSharedMounts})
   * @param bookkeeping a runtime that starts no sandbox (see {@link #forBookkeeping})
   */
  public record Config(
      Path runsc,
      String platform,
      ImageMount.Remotes remotes,
      ImageMount.Options mount,
      Consumer<String> notices,
      boolean shareMounts,
      boolean bookkeeping) {
    public static Config defaults() {
      return new Config(
          null,
          "auto",
          null,
          ImageMount.Options.defaults(),
          msg -> System.err.println("skiff: " + msg),
          false,
          false);
    }

    public Config withPlatform(String p) {
      return new Config(runsc, p, remotes, mount, notices, shareMounts, bookkeeping);
    }

    public Config withRunsc(Path bin) {
      return new Config(bin, platform, remotes, mount, notices, shareMounts, bookkeeping);
    }

    public Config withRemotes(ImageMount.Remotes r) {
      return new Config(runsc, platform, r, mount, notices, shareMounts, bookkeeping);
    }

    public Config withMount(ImageMount.Options o) {
      return new Config(runsc, platform, remotes, o, notices, shareMounts, bookkeeping);
    }

    public Config withNotices(Consumer<String> n) {
      return new Config(runsc, platform, remotes, mount, n, shareMounts, bookkeeping);
    }

    /**
     * For a runtime that lists, kills and cleans sandboxes and lists and removes snapshots, but
     * starts none: it opens without root (starting a sandbox then throws {@link
     * RootRequiredException}), and names a platform rather than probing for one it will not use.
     */
    public Config forBookkeeping() {
      return new Config(runsc, "ptrace", remotes, mount, notices, shareMounts, true);
    }

    /**
     * Offer this runtime's image mounts to other processes of the home, as {@code skiff mount}
     * does. Only for a runtime that outlives their use (a host's worker daemon): a process that
     * runs on a shared mount loses its files when the owner unmounts. Off by default.
     */
    public Config withSharedMounts(boolean on) {
      return new Config(runsc, platform, remotes, mount, notices, on, bookkeeping);
    }
  }

  /**
   * Thrown where a sandbox would be started by a process that is not root: runsc needs root to make
   * a sandbox's namespaces, cgroups and mounts, and fails deep inside without it.
   */
  public static final class RootRequiredException extends IOException {
    RootRequiredException(long euid) {
      super(
          "gVisor sandboxes need root on this host (runsc makes their namespaces, cgroups and mounts), and this"
              + " process runs as uid "
              + euid
              + ": run it as root, for example with sudo");
    }
  }

  private final ImageStore store;
  private final Config config;
  private final Runsc runsc;
  private final Path sandboxes;
  private final Path snapshots;
  private final Path initBinary;
  private Cgroups cgroups; // probed on the first sandbox that asks for limits
  private final ImageRoots roots;
  private final ImageMount.Remotes remotes;
  private final long euid;

  private SandboxRuntime(
      ImageStore store, Config config, Runsc runsc, Path sandboxes, Path initBinary, long euid)
      throws IOException {
    this.euid = euid;
    this.store = store;
    this.config = config;
    this.runsc = runsc;
    this.sandboxes = sandboxes;
    this.snapshots = store.home().resolve("snapshots");
    this.initBinary = initBinary;
    this.remotes =
        config.remotes() != null ? config.remotes() : ImageMount.Remotes.fromEnvironment();
    this.roots = new ImageRoots(store, config, remotes);
  }

  /**
   * Finds runsc, chooses the platform, and cleans what dead owners left behind. Refuses at once,
   * with {@link RootRequiredException}, in a process that is not root, unless the config is {@link
   * Config#forBookkeeping}.
   */
  public static SandboxRuntime open(ImageStore store, Config config) throws IOException {
    return open(store, config, SandboxRuntime::effectiveUid);
  }

  /** This process's effective uid, from /proc (no native call: bookkeeping needs none). */
  private static long effectiveUid() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("Uid:")) {
          return Long.parseLong(
              line.substring(4).trim().split("\\s+")[1]); // real, effective, saved, fs
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux, or no /proc: fall through
    }
    return "root".equals(System.getProperty("user.name")) ? 0 : -1;
  }

  /** {@link #open(ImageStore, Config)} with the effective uid asked of {@code euid}. */
  static SandboxRuntime open(ImageStore store, Config config, LongSupplier euid)
      throws IOException {
    long uid = euid.getAsLong();
    if (uid != 0 && !config.bookkeeping()) {
      throw new RootRequiredException(uid);
    }
    Path run = store.home().resolve("run");
    Path sandboxes = Files.createDirectories(run.resolve("sandboxes"));
    Runsc runsc = Runsc.locate(config.runsc(), run.resolve("runsc"), config.platform());
    SandboxRuntime rt =
        new SandboxRuntime(store, config, runsc, sandboxes, InitBinary.install(run), uid);
    rt.reap().forEach(config.notices());
    return rt;
  }

  /** Throws {@link RootRequiredException} unless this process can start sandboxes. */
  void requireRoot() throws RootRequiredException {
    if (euid != 0) {
      throw new RootRequiredException(euid);
    }
  }

  public Runsc runsc() {
    return runsc;
  }

  ImageStore store() {
    return store;
  }

  Config config() {
    return config;
  }

  Path initBinary() {
    return initBinary;
  }

  synchronized Cgroups cgroups() {
    if (cgroups == null) {
      cgroups = Cgroups.detect();
    }
    return cgroups;
  }

  ImageRoots roots() {
    return roots;
  }

  Path snapshotsDir() {
    return snapshots;
  }

  /**
   * A warm sandbox: started with a tiny init of Skiff's own that waits, ready to {@link
   * Sandbox#exec} processes one after another (the scheduler's reuse between calls).
   */
  public Sandbox create(String image, SandboxOptions options) throws IOException {
    return Sandbox.launch(this, newId(), image, options, Sandbox.Kind.WARM, List.of(), false, null);
  }

  /**
   * A sandbox whose first process is {@code args} (after the image's entrypoint; the image's
   * command when empty). {@code image} is NAME[:TAG], s3://BUCKET[/PREFIX]/NAME[:TAG], or an
   * absolute path to a host directory used as the root as it is (to compare with, or to try a root
   * filesystem before importing it). The sandbox ends when that process does; see {@link
   * Sandbox#main()}.
   */
  public Sandbox run(String image, SandboxOptions options, List<String> args, boolean stdin)
      throws IOException {
    return Sandbox.launch(this, newId(), image, options, Sandbox.Kind.RUN, args, stdin, null);
  }

  /**
   * A new sandbox restored from {@code snapshot}: its processes continue from where the checkpoint
   * caught them, with this sandbox's stdout and stderr (and stdin when asked).
   */
  public Sandbox restore(Snapshot snapshot, SandboxOptions options, boolean stdin)
      throws IOException {
    return Sandbox.launch(
        this,
        newId(),
        snapshot.image(),
        options,
        Sandbox.Kind.RESTORED,
        snapshot.command(),
        stdin,
        snapshot);
  }

  /** The snapshots of an image (NAME[:TAG]) in this home. */
  public List<Snapshot> snapshots(String image) throws IOException {
    return Snapshot.list(this, image);
  }

  /** Removes a snapshot, here and, for an image from a bucket, from the bucket. */
  public void delete(Snapshot snapshot) throws IOException {
    snapshot.delete(this);
  }

  /** A snapshot of an image by name (fetched from the image's bucket if it is only there). */
  public Snapshot snapshot(String image, String name) throws IOException {
    return Snapshot.find(this, image, name);
  }

  /** A client for the bucket a pulled image's chunks come from, or empty for a local image. */
  Optional<BlobStore> remoteStoreOf(ImageRef ref) throws IOException {
    Optional<S3Location> where = store.remoteOf(ref).map(remotes::relocate);
    return where.isEmpty()
        ? Optional.empty()
        : Optional.of(remotes.open(where.get(), store.scratch()));
  }

  /** What {@code skiff ps} shows. */
  public record Info(SandboxRecord record, String status) {}

  /** Every sandbox of this home, whoever owns it, with runsc's view of its state. */
  public List<Info> list() throws IOException {
    List<Info> out = new ArrayList<>();
    for (Path dir : dirs()) {
      Optional<SandboxRecord> r = SandboxRecord.read(dir);
      if (r.isPresent()) {
        out.add(new Info(r.get(), r.get().ownerAlive() ? state(r.get().id()) : "orphaned"));
      }
    }
    out.sort((a, b) -> a.record().created().compareTo(b.record().created()));
    return out;
  }

  private String state(String id) {
    try {
      Runsc.Result r = Runsc.run(runsc.plain("state", id), Duration.ofSeconds(10));
      if (r.exit() != 0) {
        return "starting";
      }
      var m = java.util.regex.Pattern.compile("\"status\":\\s*\"(\\w+)\"").matcher(r.output());
      return m.find() ? m.group(1) : "unknown";
    } catch (IOException e) {
      return "unknown";
    }
  }

  /**
   * Kills a sandbox by id: its owner (a {@code skiff run}, say) sees its process die and cleans up;
   * a sandbox whose owner is gone is cleaned here. Returns false if there is no such sandbox.
   */
  public boolean kill(String id) throws IOException {
    Path dir = sandboxes.resolve(id);
    Optional<SandboxRecord> r =
        id.matches("[a-z0-9-]+") ? SandboxRecord.read(dir) : Optional.empty();
    if (r.isEmpty()) {
      return false;
    }
    if (!r.get().ownerAlive()) {
      clean(dir, false);
      return true;
    }
    Runsc.run(runsc.plain("kill", "--all", id, "KILL"), Duration.ofSeconds(10));
    return true;
  }

  /** Cleans every sandbox whose owner is gone; returns a message per sandbox cleaned. */
  public List<String> reap() throws IOException {
    List<String> notes = new ArrayList<>();
    for (Path dir : dirs()) {
      Optional<SandboxRecord> r = SandboxRecord.read(dir);
      if (r.isPresent() && r.get().ownerAlive()) {
        continue;
      }
      if (r.isEmpty()
          && Files.getLastModifiedTime(dir).toMillis() > System.currentTimeMillis() - 60_000) {
        continue; // being created right now by another process (the record comes first, within ms)
      }
      clean(dir, false);
      notes.add(
          r.map(
                  x ->
                      "cleaned up sandbox "
                          + x.id()
                          + " ("
                          + x.image()
                          + ", "
                          + String.join(" ", x.command())
                          + ") left by process "
                          + x.ownerPid()
                          + ", which is gone")
              .orElse("cleaned up " + dir + " (no record)"));
    }
    notes.addAll(ImageRoots.reap(store.home()));
    return notes;
  }

  private List<Path> dirs() throws IOException {
    try (Stream<Path> s = Files.list(sandboxes)) {
      return s.filter(Files::isDirectory).sorted().toList();
    }
  }

  /**
   * Deletes a sandbox in runsc, unmounts its root overlay and its read-only binds, drops its
   * cgroups and removes its directory, going on past a failing step (the first failure is thrown at
   * the end); a directory where something stays mounted is left in place. With {@code
   * deleteInBackground} the runsc delete is started and not waited for: for a sandbox that has
   * stopped, where runsc delete waits 1-2 s for a gofer to be gone and nothing needs that wait.
   */
  void clean(Path dir, boolean deleteInBackground) throws IOException {
    String id = dir.getFileName().toString();
    IOException first = null;
    try {
      if (deleteInBackground) {
        new ProcessBuilder(runsc.plain("delete", "--force", id))
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .start();
      } else {
        Runsc.run(runsc.plain("delete", "--force", id), Duration.ofSeconds(30));
      }
    } catch (IOException e) {
      first = e;
    }
    Path rootfs = dir.resolve("bundle").resolve("rootfs");
    try {
      if (HostOverlay.isMounted(rootfs)) {
        HostOverlay.unmount(rootfs);
      }
    } catch (IOException e) {
      first = first == null ? e : first;
    }
    Cgroups.remove(id);
    try {
      // Read-only binds, and whatever else is still mounted in the directory: rm would go into
      // them.
      ReadOnlyBinds.detachUnder(dir);
      Runsc.run(List.of("rm", "-rf", "--one-file-system", dir.toString()), Duration.ofSeconds(30));
    } catch (IOException e) {
      first = first == null ? e : first;
    }
    if (first != null) {
      throw first;
    }
  }

  Path sandboxDir(String id) {
    return sandboxes.resolve(id);
  }

  private static String newId() {
    byte[] b = new byte[6];
    RANDOM.nextBytes(b);
    return "sb-" + HexFormat.of().formatHex(b);
  }

  /**
   * Unmounts the images this runtime mounted (close its sandboxes first). Until then every sandbox
   * of an image runs on the same warm mount.
   */
  @Override
  public void close() throws IOException {
    roots.close();
  }
}
