package dev.skiff.runtime;

import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.mount.ImageMount;
import dev.skiff.casfs.store.Remotes;
import dev.skiff.tracer.TraceHook;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ScheduledExecutorService;

/**
 * Runs processes in sandboxes whose root filesystem is an image: one-shot ({@link #run}), warm
 * ({@link #create}, then {@link Sandbox#exec} call after call), or restored from a memory snapshot
 * ({@link #restore}). {@link #open} gives the gVisor implementation; tests of what drives a runtime
 * (a worker) can put a fake behind this interface.
 *
 * <pre>{@code
 * try (ImageStore store = ImageStore.open(home);
 *     SandboxRuntime rt = SandboxRuntime.open(store, SandboxRuntime.Config.defaults());
 *     Sandbox sb = rt.create(ImageSpec.parse("myimage:1"), SandboxOptions.defaults())) {
 *   SandboxProcess p = sb.exec(List.of("python3", "-c", "print('hi')"), Sandbox.Exec.defaults());
 *   p.pipeTo(System.out, System.err);
 *   ExitStatus status = p.waitFor();
 * }
 * }</pre>
 *
 * <p>Implementations are thread safe.
 */
public interface SandboxRuntime extends AutoCloseable {

  /**
   * The gVisor runtime: finds runsc, chooses the platform, and cleans what dead owners left behind.
   * Refuses at once, with {@link RootRequiredException}, in a process that is not root.
   */
  static SandboxRuntime open(ImageStore store, Config config) throws IOException {
    return GvisorRuntime.open(store, config, GvisorRuntime::effectiveUid);
  }

  /**
   * How a runtime runs.
   *
   * @param runsc runsc binary, or null to find it ($SKIFF_RUNSC, the PATH)
   * @param platform auto, systrap, ptrace or kvm
   * @param remotes how to reach buckets (null: as the AWS tools would, from the environment)
   * @param mount how images are mounted (caches, windows, threads)
   * @param trace start-up traces: replay as prefetch, record
   * @param listener hears what the runtime does ({@link RuntimeEvent})
   * @param shareMounts lend this runtime's mounts to other processes of the home (see {@link
   *     #withSharedMounts})
   * @param idleUnmount unmount an image no sandbox has used for this long; null keeps mounts until
   *     the runtime closes
   * @param scheduler runs timeouts and idle unmounts; null gives the runtime one of its own
   */
  record Config(
      Path runsc,
      String platform,
      Remotes remotes,
      ImageMount.Options mount,
      TraceHook.Options trace,
      RuntimeListener listener,
      boolean shareMounts,
      Duration idleUnmount,
      ScheduledExecutorService scheduler) {
    public static Config defaults() {
      return new Config(
          null,
          "auto",
          null,
          ImageMount.Options.defaults(),
          TraceHook.Options.defaults(),
          RuntimeListener.NONE,
          false,
          Duration.ofMinutes(10),
          null);
    }

    public Config withPlatform(String p) {
      return new Config(
          runsc, p, remotes, mount, trace, listener, shareMounts, idleUnmount, scheduler);
    }

    public Config withRunsc(Path bin) {
      return new Config(
          bin, platform, remotes, mount, trace, listener, shareMounts, idleUnmount, scheduler);
    }

    public Config withRemotes(Remotes r) {
      return new Config(
          runsc, platform, r, mount, trace, listener, shareMounts, idleUnmount, scheduler);
    }

    public Config withMount(ImageMount.Options o) {
      return new Config(
          runsc, platform, remotes, o, trace, listener, shareMounts, idleUnmount, scheduler);
    }

    public Config withTrace(TraceHook.Options t) {
      return new Config(
          runsc, platform, remotes, mount, t, listener, shareMounts, idleUnmount, scheduler);
    }

    public Config withListener(RuntimeListener l) {
      return new Config(
          runsc, platform, remotes, mount, trace, l, shareMounts, idleUnmount, scheduler);
    }

    /**
     * Lend this runtime's image mounts to other processes of the home, as {@code skiff mount} does.
     * Only for a runtime that outlives their use (a host's worker daemon): a process that runs on a
     * lent mount loses its files when the owner unmounts. Off by default.
     */
    public Config withSharedMounts(boolean on) {
      return new Config(
          runsc, platform, remotes, mount, trace, listener, on, idleUnmount, scheduler);
    }

    public Config withIdleUnmount(Duration idle) {
      return new Config(
          runsc, platform, remotes, mount, trace, listener, shareMounts, idle, scheduler);
    }

    public Config withScheduler(ScheduledExecutorService s) {
      return new Config(
          runsc, platform, remotes, mount, trace, listener, shareMounts, idleUnmount, s);
    }
  }

  /**
   * Thrown where a sandbox would be started by a process that is not root: runsc needs root to make
   * a sandbox's namespaces, cgroups and mounts, and fails deep inside without it.
   */
  final class RootRequiredException extends IOException {
    private static final long serialVersionUID = 1L;

    RootRequiredException(long euid) {
      super(
          "gVisor sandboxes need root on this host (runsc makes their namespaces, cgroups and"
              + " mounts), and this process runs as uid "
              + euid
              + ": run it as root, for example with sudo");
    }
  }

  /**
   * A warm sandbox: started with a tiny init of Skiff's own that waits, ready to {@link
   * Sandbox#exec} processes one after another (the scheduler's reuse between calls).
   */
  Sandbox create(ImageSpec image, SandboxOptions options) throws IOException;

  /**
   * A sandbox whose first process is {@code args} (after the image's entrypoint; the image's
   * command when empty). The sandbox ends when that process does; see {@link Sandbox#main()}.
   */
  Sandbox run(ImageSpec image, SandboxOptions options, List<String> args, boolean stdin)
      throws IOException;

  /**
   * A new sandbox restored from {@code snapshot}: its processes continue from where the checkpoint
   * caught them, with this sandbox's stdout and stderr (and stdin when asked).
   */
  Sandbox restore(Snapshot snapshot, SandboxOptions options, boolean stdin) throws IOException;

  /** Where snapshots are kept, listed, fetched and removed. */
  SnapshotStore snapshots();

  /**
   * Starts mounting {@code image} in the background if it is not mounted, so that a sandbox created
   * or restored on it soon after finds it mounted (while, say, its snapshot is fetched). Unused,
   * the mount goes after the idle time as any other. Failures are the later start's to report.
   */
  default void prepare(ImageSpec image) {}

  /**
   * Says that {@code image} will not be run on again soon (a build step's parent, once the step
   * ran): its mount goes as soon as no sandbox uses it, not after the idle time, so that a worker
   * that builds many images does not keep a mount (and its threads and files) for each step.
   */
  default void unneeded(ImageSpec image) {}

  /**
   * The NVIDIA driver versions whose GPUs this runtime can put in a sandbox (gVisor's nvproxy
   * supports a list of them); empty where it can put none in.
   */
  default List<String> gpuDrivers() throws IOException {
    return List.of();
  }

  /** The sandboxes of this home: listing, killing, cleaning what dead owners left. */
  SandboxRegistry sandboxes();

  /** What a runtime holds now, for people and for soak measurements. */
  record Stats(int openSandboxes, int mounts) {}

  Stats stats();

  /**
   * Unmounts the images this runtime mounted (close its sandboxes first). Until then sandboxes of
   * an image run on the same warm mount.
   */
  @Override
  void close() throws IOException;
}
