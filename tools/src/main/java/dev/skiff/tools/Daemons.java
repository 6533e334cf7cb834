package dev.skiff.tools;

import dev.skiff.api.Resources;
import dev.skiff.gpu.DriverFiles;
import dev.skiff.gpu.GpuHost;
import dev.skiff.gpu.GpuSandbox;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.scheduler.state.ControlState;
import dev.skiff.scheduler.state.LmdbControlState;
import dev.skiff.scheduler.worker.GpuInventory;
import dev.skiff.scheduler.worker.Worker;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Option;

/** What the daemons (serve, scheduler, worker) share: addresses, state, a worker's offer. */
final class Daemons {
  private Daemons() {}

  /** Parses {@code HOST:PORT}. */
  static InetSocketAddress address(String s) {
    int colon = s.lastIndexOf(':');
    if (colon <= 0) {
      throw new IllegalArgumentException("bad address '" + s + "': want HOST:PORT");
    }
    try {
      return new InetSocketAddress(s.substring(0, colon), Integer.parseInt(s.substring(colon + 1)));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("bad address '" + s + "': want HOST:PORT");
    }
  }

  /** The scheduler's state: a directory (embedded, the default) or a PostgreSQL URL. */
  static ControlState openState(String spec, Path home) throws IOException {
    if (spec == null || spec.isBlank()) {
      return LmdbControlState.open(home.resolve("control").resolve("state"));
    }
    if (spec.startsWith("postgresql://") || spec.startsWith("postgres://")) {
      return dev.skiff.scheduler.state.PostgresControlState.open(spec);
    }
    return LmdbControlState.open(Path.of(spec).toAbsolutePath());
  }

  /** The scheduler's data directory (payloads, logs): the one given, or HOME/control. */
  static Path data(Path given, Path home) {
    return given != null ? given.toAbsolutePath() : home.resolve("control");
  }

  /** What a worker offers and how it runs, as options. */
  static final class WorkerOptions {
    @Option(
        names = "--worker-id",
        paramLabel = "ID",
        description = "the worker's name at the scheduler (default: the host name)")
    String id;

    @Option(
        names = "--offer-cpus",
        paramLabel = "N",
        description = "CPU cores offered to containers (default: all of this host's)")
    Double cpus;

    @Option(
        names = "--offer-memory",
        paramLabel = "SIZE",
        description = "memory offered to containers (default: all of this host's)")
    String memory;

    @Option(
        names = "--gpus",
        paramLabel = "TYPE[:N],...",
        description =
            "the GPUs offered, by type (H100:2,A100-80GB), told to containers by index only; 'none' for none (default: the driver's GPUs, through NVML or nvidia-smi, given to containers through nvproxy)")
    String gpus;

    @Option(
        names = "--gpus-without-gvisor",
        description =
            "where runsc's nvproxy does not support this host's NVIDIA driver, run GPU containers"
                + " under runc instead of refusing them: trusted code only (no second kernel"
                + " between it and the host); off by default, and shown in skiff workers")
    boolean gpusWithoutGvisor;

    @Option(
        names = "--python",
        defaultValue = "python3",
        paramLabel = "PATH",
        description =
            "the Python to run in containers: a path, or a name on the image's PATH (default ${DEFAULT-VALUE})")
    String python;

    @Option(
        names = "--parallel-starts",
        defaultValue = "8",
        paramLabel = "N",
        description = "containers started at once (default ${DEFAULT-VALUE})")
    int parallelStarts;

    @Option(
        names = "--keep-unused",
        defaultValue = "24h",
        paramLabel = "DURATION",
        description =
            "remove code and function snapshots no container has used for this long (default ${DEFAULT-VALUE})")
    String keepUnused;

    @Option(
        names = "--build-cache",
        paramLabel = "s3://BUCKET[/PREFIX]",
        description =
            "a bucket the image builds of this worker share their steps through with other"
                + " workers (each with a store of its own): a step found there is fetched, not run")
    String buildCache;

    /** The bucket of {@code --build-cache}, its client open, or null; the caller closes it. */
    dev.skiff.runtime.build.ImageBuilder.SharedCache buildCache(
        RemoteOptions remote, dev.skiff.casfs.ImageStore images) throws IOException {
      if (buildCache == null) {
        return null;
      }
      dev.skiff.casfs.store.S3Location where = remote.location(buildCache);
      return new dev.skiff.runtime.build.ImageBuilder.SharedCache(
          remote.open(where, images.scratch()), where);
    }

    /**
     * The worker's options: GPUs as declared with {@code --gpus}, else as the driver lists them
     * (then containers get them through {@code rt}'s nvproxy).
     */
    Worker.Options options(Path home, String defaultId, SandboxRuntime rt) throws IOException {
      long mem =
          memory != null
              ? Resources.parseBytes(memory)
              : ((com.sun.management.OperatingSystemMXBean)
                      ManagementFactory.getOperatingSystemMXBean())
                  .getTotalMemorySize();
      List<String> offered;
      GpuSandbox sandbox = null;
      if (gpus != null) {
        offered = GpuInventory.parse(gpus);
      } else {
        GpuHost host = dev.skiff.gpu.GpuInventory.fromEnvironment().read();
        offered = host.offered();
        if (!offered.isEmpty()) {
          sandbox =
              new GpuSandbox(
                  host,
                  DriverFiles.host(),
                  home.resolve("gpus"),
                  rt.gpuDrivers(),
                  gpusWithoutGvisor,
                  dev.skiff.gpu.GpuInventory.fromEnvironment());
        }
      }
      return new Worker.Options(
              id != null ? id : defaultId,
              cpus != null ? cpus : Runtime.getRuntime().availableProcessors(),
              mem,
              new ArrayList<>(offered),
              home.resolve("worker"),
              python,
              parallelStarts,
              sandbox)
          .withKeepUnused(RemoteOptions.duration(keepUnused));
    }
  }

  static String hostName() {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      return "worker";
    }
  }

  /** Runs {@code stop} when the process is told to end (Ctrl-C, SIGTERM), and waits for that. */
  static void runUntilStopped(Runnable stop) throws InterruptedException {
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    stop.run();
                  } finally {
                    stopped.countDown();
                  }
                },
                "skiff-stop"));
    stopped.await();
  }

  static void closeAll(AutoCloseable... parts) {
    for (AutoCloseable p : parts) {
      if (p == null) {
        continue;
      }
      try {
        p.close();
      } catch (Exception e) {
        System.err.println("skiff: stopping: " + e.getMessage());
      }
    }
  }
}
