package dev.skiff.runtime;

import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.store.Remotes;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.function.LongSupplier;

/**
 * gVisor sandboxes whose root filesystem is a casfs mount of an image, served by this process. One
 * per process is enough (it mounts each image once for all its sandboxes).
 *
 * <p>State lives under {@code $SKIFF_HOME/run}: runsc's own ({@code runsc/}), one directory per
 * sandbox ({@code sandboxes/ID/}: who owns it, its OCI bundle, the read-only binds its read-only
 * volumes are served from ({@code ro/}), runsc's logs; see {@link SandboxRegistry}) and the mounts
 * ({@code mounts/}; see {@link MountPool}). {@link #open} cleans what dead owners left.
 */
final class GvisorRuntime implements SandboxRuntime {
  private final ImageStore store;
  private final Config config;
  private final Runsc runsc;
  private final SandboxRegistry registry;
  private final SnapshotStore snapshots;
  private final MountPool mounts;
  private final Path initBinary;
  private final ScheduledExecutorService scheduler;
  private final boolean ownScheduler;
  private final Set<GvisorSandbox> open = ConcurrentHashMap.newKeySet();
  private final Set<Process> deletes = ConcurrentHashMap.newKeySet();
  private Cgroups cgroups; // probed on the first sandbox that asks for limits

  private GvisorRuntime(
      ImageStore store, Config config, Runsc runsc, SandboxRegistry registry, Path initBinary)
      throws IOException {
    this.store = store;
    this.config = config;
    this.runsc = runsc;
    this.registry = registry;
    this.initBinary = initBinary;
    Remotes remotes = config.remotes() != null ? config.remotes() : Remotes.fromEnvironment();
    this.snapshots = new SnapshotStore(store, remotes);
    this.ownScheduler = config.scheduler() == null;
    this.scheduler = ownScheduler ? Timers.single("skiff-runtime-timers") : config.scheduler();
    this.mounts =
        new MountPool(
            store,
            remotes,
            config.mount(),
            config.trace(),
            config.shareMounts(),
            config.idleUnmount(),
            scheduler,
            config.listener());
  }

  /** This process's effective uid, from /proc (no native call). */
  static long effectiveUid() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("Uid:")) {
          return Long.parseLong(line.substring(4).trim().split("\\s+")[1]); // real, effective, ...
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux, or no /proc: fall through
    }
    return "root".equals(System.getProperty("user.name")) ? 0 : -1;
  }

  /** {@link SandboxRuntime#open} with the effective uid asked of {@code euid}. */
  static GvisorRuntime open(ImageStore store, Config config, LongSupplier euid) throws IOException {
    long uid = euid.getAsLong();
    if (uid != 0) {
      throw new RootRequiredException(uid);
    }
    Path run = store.home().resolve("run");
    Runsc runsc = Runsc.locate(config.runsc(), run.resolve("runsc"), config.platform());
    SandboxRegistry registry = new SandboxRegistry(store.home(), () -> runsc);
    GvisorRuntime rt = new GvisorRuntime(store, config, runsc, registry, InitBinary.install(run));
    for (RuntimeEvent e : registry.reap()) {
      config.listener().event(e);
    }
    return rt;
  }

  Runsc runsc() {
    return runsc;
  }

  @Override
  public List<String> gpuDrivers() throws IOException {
    return runsc.nvproxyDrivers();
  }

  ImageStore store() {
    return store;
  }

  Config config() {
    return config;
  }

  RuntimeListener listener() {
    return config.listener();
  }

  Path initBinary() {
    return initBinary;
  }

  ScheduledExecutorService scheduler() {
    return scheduler;
  }

  MountPool mounts() {
    return mounts;
  }

  synchronized Cgroups cgroups() {
    if (cgroups == null) {
      cgroups = Cgroups.detect();
    }
    return cgroups;
  }

  void opened(GvisorSandbox sb) {
    open.add(sb);
  }

  void closed(GvisorSandbox sb) {
    open.remove(sb);
  }

  /**
   * Counts a runsc delete running in the background. It is a process of its own and finishes
   * whether or not this one is still there; the runtime only keeps count (see {@link #stats}).
   */
  void deleting(Process delete) {
    deletes.removeIf(p -> !p.isAlive());
    if (delete != null) {
      deletes.add(delete);
    }
  }

  @Override
  public Sandbox create(ImageSpec image, SandboxOptions options) throws IOException {
    return GvisorSandbox.launch(
        this, image, options, GvisorSandbox.Kind.WARM, List.of(), false, null);
  }

  @Override
  public Sandbox run(ImageSpec image, SandboxOptions options, List<String> args, boolean stdin)
      throws IOException {
    return GvisorSandbox.launch(this, image, options, GvisorSandbox.Kind.RUN, args, stdin, null);
  }

  @Override
  public Sandbox restore(Snapshot snapshot, SandboxOptions options, boolean stdin)
      throws IOException {
    return GvisorSandbox.launch(
        this,
        snapshot.imageSpec(),
        options,
        GvisorSandbox.Kind.RESTORED,
        snapshot.command(),
        stdin,
        snapshot);
  }

  @Override
  public void prepare(ImageSpec image) {
    if (image instanceof ImageSpec.HostDirectory) {
      return;
    }
    Thread.ofVirtual()
        .name("skiff-prepare")
        .start(
            () -> {
              try (MountPool.Lease lease = mounts.acquire(image)) {
                // mounted: released to the pool's idle timer, for the start that follows
              } catch (IOException | RuntimeException e) {
                // the start that follows tries again and says why
              }
            });
  }

  @Override
  public void unneeded(ImageSpec image) {
    try {
      mounts.unneeded(image);
    } catch (IOException | RuntimeException e) {
      // a hint: the idle time takes the mount anyway
    }
  }

  @Override
  public SnapshotStore snapshots() {
    return snapshots;
  }

  @Override
  public SandboxRegistry sandboxes() {
    return registry;
  }

  @Override
  public Stats stats() {
    return new Stats(open.size(), mounts.size());
  }

  @Override
  public void close() throws IOException {
    try {
      mounts.close();
    } finally {
      if (ownScheduler) {
        scheduler.shutdownNow();
      }
    }
  }
}
