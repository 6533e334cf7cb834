package dev.skiff.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.api.GpuRequest;
import dev.skiff.casfs.ImageStore;
import dev.skiff.gpu.DriverFiles;
import dev.skiff.gpu.Gpu;
import dev.skiff.gpu.GpuClaims;
import dev.skiff.gpu.GpuHost;
import dev.skiff.gpu.GpuInventory;
import dev.skiff.gpu.GpuPick;
import dev.skiff.gpu.GpuSandbox;
import dev.skiff.gpu.NvidiaSmi;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.scheduler.LocalPlatform;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.Resources;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.Status;
import dev.skiff.scheduler.state.LmdbControlState;
import dev.skiff.scheduler.worker.Worker;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The GPU device check ({@code gpu/device-check} runs it with the JVM and runsc it brings): on a
 * host with NVIDIA GPUs, reads the inventory, asks runsc's nvproxy about the driver, starts a
 * scheduler and a worker in this process, and has the worker place two Python functions, one asking
 * for an {@code H200} and one for {@code any} GPU, whose handler prints the GPU PyTorch sees and
 * times a matrix product, in gVisor sandboxes on the host's own root file system. Where the
 * sandboxes cannot have the GPU, the same handler runs on the host without a sandbox, and the
 * summary says which ran where. Also says what kind of machine this is (a gVisor guest, a
 * Firecracker VM, ...), which decides whether gVisor can run here at all.
 *
 * <p>Arguments: {@code [--runsc PATH] [--work DIR] [--python PATH] [--timeout SECONDS]}.
 */
public final class DeviceCheck {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final Map<String, String> summary = new LinkedHashMap<>();

  private DeviceCheck() {}

  public static void main(String[] args) throws Exception {
    Path runsc = null;
    Path work = Path.of("/tmp/skiff-device/work");
    String python = null;
    int timeout = 240;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--runsc" -> runsc = Path.of(args[++i]);
        case "--work" -> work = Path.of(args[++i]);
        case "--python" -> python = args[++i];
        case "--timeout" -> timeout = Integer.parseInt(args[++i]);
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    if (python == null) {
      python = interpreter("python3");
    }
    new DeviceCheck().run(runsc, work, python, Duration.ofSeconds(timeout));
  }

  private void run(Path runsc, Path work, String python, Duration timeout) throws Exception {
    section("machine");
    String machine = machine();
    System.out.println(machine);
    summary.put("machine", machine.lines().findFirst().orElse(""));

    section("inventory");
    GpuHost host = GpuInventory.fromEnvironment().read();
    printInventory(host);
    summary.put(
        "inventory",
        host.gpus().size()
            + " GPUs "
            + host.offered()
            + " through "
            + host.source()
            + (host.note().isEmpty() ? "" : " (" + host.note().lines().findFirst().get() + ")")
            + ", driver "
            + host.driverVersion()
            + ", CUDA "
            + host.cudaVersion());
    if (host.source().equals("nvml")) {
      try {
        GpuHost smi = NvidiaSmi.read("nvidia-smi", Path.of("/proc"));
        boolean same =
            smi.gpus().stream()
                    .map(Gpu::uuid)
                    .toList()
                    .equals(host.gpus().stream().map(Gpu::uuid).toList())
                && smi.offered().equals(host.offered());
        summary.put(
            "nvidia-smi", same ? "agrees with NVML" : "DIFFERS from NVML: " + smi.offered());
      } catch (IOException e) {
        summary.put("nvidia-smi", "not run: " + e.getMessage());
      }
    }

    Files.createDirectories(work);
    Path code = Files.createDirectories(work.resolve("code"));
    try (InputStream in = DeviceCheck.class.getResourceAsStream("gpu_probe.py")) {
      Files.write(code.resolve("gpu_probe.py"), in.readAllBytes());
    }

    section("sandbox (gVisor, nvproxy)");
    Map<String, String> sandboxed = new LinkedHashMap<>();
    try {
      sandboxed = inSandboxes(host, runsc, work, code, python, timeout);
    } catch (Exception e) {
      String why = e.getClass().getSimpleName() + ": " + e.getMessage();
      System.out.println("the platform could not start: " + why);
      sandboxed.put("H200", "not run: " + why);
      sandboxed.put("any", "not run: " + why);
    }
    sandboxed.forEach((k, v) -> summary.put("sandbox, " + k + " request", v));

    boolean sandboxGotAGpu = sandboxed.values().stream().anyMatch(v -> v.startsWith("ran"));
    if (!sandboxGotAGpu) {
      section("fallback: the same handler on the host, without a sandbox");
      summary.put("fallback (host, no sandbox)", onHost(host, work, code, python, timeout));
    }

    section("summary");
    summary.forEach((k, v) -> System.out.printf("%-30s %s%n", k + ":", v));
  }

  private static void section(String name) {
    System.out.println();
    System.out.println("== " + name);
  }

  /** What this machine is, as far as it can tell: the first line says it in words. */
  static String machine() {
    String version = read("/proc/version");
    String cmdline = read("/proc/cmdline");
    String cpuinfo = read("/proc/cpuinfo");
    String vendor = read("/sys/class/dmi/id/sys_vendor").strip();
    String product = read("/sys/class/dmi/id/product_name").strip();
    String kind;
    if (version.contains("4.4.0") && version.contains("2016")) {
      kind = "a gVisor guest (its kernel says 4.4.0 of 2016, as gVisor's sentry does)";
    } else if (cmdline.contains("firecracker")
        || (cmdline.contains("virtio_mmio.device=") && vendor.isEmpty())) {
      kind =
          "a Firecracker microVM (its kernel command line says so"
              + (vendor.isEmpty() ? "; no DMI" : "")
              + ")";
    } else if (cpuinfo.contains(" hypervisor")) {
      kind = "a virtual machine (" + (vendor + " " + product).strip() + ")";
    } else {
      kind = "bare metal, as far as it says (" + (vendor + " " + product).strip() + ")";
    }
    return kind
        + "\nkernel: "
        + version.strip()
        + "\ncmdline: "
        + cmdline.strip()
        + "\ncores: "
        + Runtime.getRuntime().availableProcessors();
  }

  private static String read(String file) {
    try {
      return Files.readString(Path.of(file));
    } catch (IOException | RuntimeException e) {
      return "";
    }
  }

  private static void printInventory(GpuHost host) {
    System.out.printf(
        "source %s, driver %s, CUDA %s%s%n",
        host.source(),
        host.driverVersion(),
        host.cudaVersion(),
        host.note().isEmpty() ? "" : ", " + host.note());
    for (Gpu g : host.gpus()) {
      System.out.printf(
          Locale.ROOT,
          "  %d  %-10s %-28s %6d MiB (%d used)  %3d%%  %3dC  %6.1fW  MIG %-3s minor %d  %s%n",
          g.index(),
          g.type(),
          g.model(),
          g.memoryMib(),
          g.memoryUsedMib(),
          g.utilisation(),
          g.temperatureC(),
          g.powerWatts(),
          g.mig() ? "on" : "off",
          g.minor(),
          g.uuid());
    }
  }

  /** The two functions through a scheduler and a worker on this host, in sandboxes. */
  private Map<String, String> inSandboxes(
      GpuHost host, Path runsc, Path work, Path code, String python, Duration timeout)
      throws Exception {
    Map<String, String> out = new LinkedHashMap<>();
    Path home = work.resolve("home");
    SandboxRuntime.Config config = SandboxRuntime.Config.defaults();
    if (runsc != null) {
      config = config.withRunsc(runsc);
    }
    try (ImageStore store = ImageStore.open(home);
        SandboxRuntime rt = SandboxRuntime.open(store, config);
        LmdbControlState state = LmdbControlState.open(work.resolve("state"))) {
      List<String> drivers = rt.gpuDrivers();
      System.out.println("runsc's nvproxy supports drivers " + drivers);
      summary.put(
          "nvproxy",
          drivers.contains(host.driverVersion())
              ? "supports driver " + host.driverVersion()
              : "does NOT support driver " + host.driverVersion() + " (supports " + drivers + ")");
      GpuSandbox gpus =
          host.gpus().isEmpty()
              ? null
              : new GpuSandbox(host, DriverFiles.host(), home.resolve("gpus"), drivers);
      Worker.Options options =
          new Worker.Options(
              "device",
              Runtime.getRuntime().availableProcessors(),
              0,
              host.offered(),
              work.resolve("worker"),
              python,
              2,
              gpus);
      try (LocalPlatform platform = LocalPlatform.start(store, rt, state, options);
          ControlClient client = platform.client()) {
        for (String request : List.of("H200", "any")) {
          String name = request.equals("any") ? "any" : request.toLowerCase(Locale.ROOT);
          FunctionSpec spec =
              FunctionSpec.newBuilder()
                  .setApp("check-" + name)
                  .setName("probe")
                  .setImage("/") // the host's own root: its Python and PyTorch
                  .setLanguage("python")
                  .setHandler("gpu_probe:probe")
                  .setTimeoutMs(timeout.toMillis())
                  .setResources(Resources.newBuilder().addGpu(request))
                  .build();
          var deployed = client.deploy(spec, code);
          if (!deployed.getWarning().isEmpty()) {
            System.out.println(request + ": " + deployed.getWarning());
          }
          long t0 = System.nanoTime();
          Result r =
              client.call("check-" + name + "/probe", ControlClient.input("[null]", ""), timeout);
          double secs = (System.nanoTime() - t0) / 1e9;
          String said = said(r);
          System.out.printf(Locale.ROOT, "%s request, %.1f s: %s%n", request, secs, said);
          out.put(request, said);
          client.stopApp("check-" + name); // its GPU is free for the next request
        }
      }
    }
    return out;
  }

  /** A call's outcome in one line: "ran ..." only where it had a GPU. */
  private static String said(Result r) throws IOException {
    if (r.getStatus() != Status.SUCCESS) {
      return "failed ("
          + r.getStatus()
          + "): "
          + r.getFailure().getType()
          + ": "
          + r.getFailure().getMessage().lines().findFirst().orElse("");
    }
    return describe(JSON.readTree(r.getOutputJson().toStringUtf8()), "in a gVisor sandbox");
  }

  private static String describe(JsonNode o, String where) {
    if (o.hasNonNull("device")) {
      return "ran "
          + where
          + " on "
          + o.path("device").asText()
          + " ("
          + o.path("device_count").asInt()
          + " visible; /dev: "
          + o.path("nvidia_dev_nodes")
          + "); "
          + o.path("matmul").asText();
    }
    return "no GPU "
        + where
        + ": "
        + o.path("error").asText()
        + "; /dev: "
        + o.path("nvidia_dev_nodes");
  }

  /** The handler run as a plain process on the host, on a GPU claimed for it. */
  private static String onHost(GpuHost host, Path work, Path code, String python, Duration timeout)
      throws Exception {
    if (host.gpus().isEmpty()) {
      return "not run: no GPUs here";
    }
    try (GpuClaims.Claim claim =
        GpuPick.claim(
            host,
            List.of(GpuRequest.parse("any")),
            GpuClaims.of(work.resolve("home")),
            "device check, on the host")) {
      ProcessBuilder pb =
          new ProcessBuilder(python, code.resolve("gpu_probe.py").toString())
              .redirectErrorStream(true);
      pb.environment().put("CUDA_VISIBLE_DEVICES", claim.gpus().get(0).uuid());
      Process p = pb.start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(timeout.toSeconds(), TimeUnit.SECONDS)) {
        p.destroyForcibly();
        return "timed out";
      }
      System.out.println(out.strip());
      String last = out.strip().lines().reduce((a, b) -> b).orElse("");
      try {
        return describe(JSON.readTree(last), "on the host (no sandbox)");
      } catch (IOException e) {
        return "failed (exit " + p.exitValue() + "): " + last;
      }
    }
  }

  /**
   * The interpreter {@code name} runs as (a pyenv or conda shim resolves to the real one), which
   * the sandboxes run from the host's root.
   */
  private static String interpreter(String name) {
    try {
      Process p =
          new ProcessBuilder(name, "-c", "import sys; print(sys.executable)")
              .redirectErrorStream(true)
              .start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      if (p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0 && out.startsWith("/")) {
        return out;
      }
    } catch (IOException e) {
      // not on the PATH: said when the functions cannot start
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return name;
  }
}
