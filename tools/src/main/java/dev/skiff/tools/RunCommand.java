package dev.skiff.tools;

import dev.skiff.api.GpuRequest;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.gpu.DriverFiles;
import dev.skiff.gpu.GpuClaims;
import dev.skiff.gpu.GpuHost;
import dev.skiff.gpu.GpuInventory;
import dev.skiff.gpu.GpuPick;
import dev.skiff.gpu.GpuSandbox;
import dev.skiff.runtime.ExitStatus;
import dev.skiff.runtime.Sandbox;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxProcess;
import dev.skiff.runtime.SandboxRuntime;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "run",
    mixinStandardHelpOptions = true,
    description = {
      "Run a command in a gVisor sandbox on a lazy mount of an image.",
      "stdout and stderr are streamed; the exit code is the command's (128+N when killed by signal N, 124 on"
          + " --timeout).",
      "IMAGE is NAME[:TAG], s3://BUCKET[/PREFIX]/NAME[:TAG] or /abs/dir. Without a command, the image's own"
          + " runs.",
      "Writes go to an overlay that vanishes with the sandbox; no network unless --network."
    })
final class RunCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Mixin RemoteOptions remote;

  @Mixin SandboxCliOptions sandbox;

  @Option(
      names = {"-i", "--interactive"},
      description = "pass this process's stdin to the command")
  boolean stdin;

  @Option(
      names = "--record",
      description = "record the start's reads into the image's trace (see skiff trace)")
  boolean record;

  @Option(
      names = "--gpu",
      paramLabel = "TYPE[:N],...",
      split = ",",
      description =
          "give the sandbox GPUs of this host: H100, A100-80GB:2, any; several in rank order (the"
              + " first that is free is taken), through gVisor's nvproxy")
  List<String> gpu = new ArrayList<>();

  @Option(
      names = "--gpus-without-gvisor",
      description =
          "with --gpu, where runsc's nvproxy does not support the driver, run under runc instead"
              + " (trusted code only)")
  boolean gpusWithoutGvisor;

  @Parameters(index = "0", paramLabel = "IMAGE")
  String image;

  @Parameters(index = "1..*", paramLabel = "CMD", description = "command and arguments (after --)")
  List<String> command = new ArrayList<>();

  @Override
  public Integer call() throws Exception {
    if (!gpu.isEmpty()) {
      return runWithGpus();
    }
    if (!record && sandbox.runtime.isDefault() && remote.isDefault()) {
      var handedOff =
          LocalDaemon.tryHandOff(
              store.home(), LocalDaemon.Request.of("run", image, null, command, stdin, sandbox));
      if (handedOff.isPresent()) {
        return handedOff.get();
      }
    }
    try (ImageStore s = ImageStore.open(store.home());
        SandboxRuntime rt = sandbox.open(s, remote, record)) {
      return runToExit(
          rt, rt.run(ImageSpec.parse(image), sandbox.options(), command, stdin), stdin);
    }
  }

  /**
   * Runs in this process (a running daemon's runtime is not asked to) with the GPUs claimed here
   * until it exits; a killed process's claim goes with it.
   */
  private int runWithGpus() throws Exception {
    List<GpuRequest> ranks = gpu.stream().map(GpuRequest::parse).toList();
    GpuHost host = GpuInventory.fromEnvironment().read();
    try (ImageStore s = ImageStore.open(store.home());
        SandboxRuntime rt = sandbox.open(s, remote, record);
        GpuClaims.Claim claim =
            GpuPick.claim(
                host,
                ranks,
                GpuClaims.of(store.home()),
                "skiff run " + image + " (pid " + ProcessHandle.current().pid() + ")")) {
      SandboxOptions.Builder o = sandbox.options().toBuilder();
      new GpuSandbox(
              host,
              DriverFiles.host(),
              store.home().resolve("gpus"),
              rt.gpuDrivers(),
              gpusWithoutGvisor,
              null)
          .give(o, claim.gpus());
      return runToExit(rt, rt.run(ImageSpec.parse(image), o.build(), command, stdin), stdin);
    }
  }

  /**
   * Streams a sandbox's first process to this terminal until it exits, then tears the sandbox down;
   * Ctrl-C tears it down at once. Returns the exit code to leave with.
   */
  static int runToExit(SandboxRuntime rt, Sandbox sb, boolean stdin) throws Exception {
    Thread hook =
        new Thread(
            () -> {
              closeQuietly(sb);
              try {
                rt.close();
              } catch (IOException e) {
                System.err.println("skiff: unmounting: " + e.getMessage());
              }
            },
            "skiff-teardown");
    Runtime.getRuntime().addShutdownHook(hook);
    try (sb) {
      SandboxProcess p = sb.main().orElseThrow();
      Thread[] pumps =
          p.pipeTo(
              new FileOutputStream(FileDescriptor.out), new FileOutputStream(FileDescriptor.err));
      if (stdin) {
        p.pipeStdinFrom(System.in);
      }
      ExitStatus status = p.waitFor();
      for (Thread t : pumps) {
        t.join(5_000);
      }
      String why = why(sb, status);
      if (why != null) {
        System.err.println(why);
      }
      return status.shellCode();
    } finally {
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException shuttingDown) {
        // the hook is running: it tears down
      }
    }
  }

  /** What to say of a process that timed out or ran out of memory; null for any other end. */
  static String why(Sandbox sb, ExitStatus status) {
    if (status.timedOut()) {
      return String.format(
          "skiff run: timed out after %s; sandbox %s killed", sb.options().timeout(), sb.id());
    }
    if (status.oomKilled()) {
      return String.format(
          "skiff run: sandbox %s ran out of its memory limit (%s)",
          sb.id(), Human.bytes(sb.options().memoryBytes()));
    }
    return null;
  }

  private static void closeQuietly(Sandbox sb) {
    try {
      sb.close();
    } catch (IOException e) {
      System.err.println("skiff: tearing down sandbox " + sb.id() + ": " + e.getMessage());
    }
  }
}
