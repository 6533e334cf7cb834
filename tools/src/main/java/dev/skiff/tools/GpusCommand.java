package dev.skiff.tools;

import dev.skiff.casfs.ImageStore;
import dev.skiff.gpu.Gpu;
import dev.skiff.gpu.GpuClaims;
import dev.skiff.gpu.GpuHost;
import dev.skiff.gpu.GpuInventory;
import dev.skiff.runtime.SandboxRuntime;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(
    name = "gpus",
    mixinStandardHelpOptions = true,
    description = {
      "List this host's GPUs: index, type (as functions request it), model, memory, use, UUID,"
          + " MIG mode, and which sandbox holds each.",
      "Read through NVML (libnvidia-ml.so.1; $SKIFF_NVML names another), else nvidia-smi"
          + " ($SKIFF_NVIDIA_SMI). Also says whether this runsc's nvproxy supports the driver."
    })
final class GpusCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Mixin RuntimeCliOptions runtime;

  @Override
  public Integer call() throws Exception {
    GpuHost host = GpuInventory.fromEnvironment().read();
    if (host.gpus().isEmpty()) {
      System.out.println(
          "no GPUs" + (host.note().isEmpty() ? "" : ": " + host.note().lines().findFirst().get()));
      return 0;
    }
    System.out.printf(
        "driver %s, CUDA %s (read through %s); %s%n",
        host.driverVersion(),
        host.cudaVersion().isEmpty() ? "?" : host.cudaVersion(),
        host.source(),
        nvproxy(host));
    System.out.printf(
        "%-5s %-10s %-26s %-10s %-10s %-5s %-5s %-7s %-4s %-40s %s%n",
        "INDEX",
        "TYPE",
        "MODEL",
        "MEMORY",
        "USED",
        "UTIL",
        "TEMP",
        "POWER",
        "MIG",
        "UUID",
        "IN USE BY");
    GpuClaims claims = GpuClaims.of(store.home());
    for (Gpu g : host.gpus()) {
      System.out.printf(
          Locale.ROOT,
          "%-5d %-10s %-26s %-10s %-10s %-5s %-5s %-7s %-4s %-40s %s%n",
          g.index(),
          g.type() == null ? "-" : g.type(),
          g.model(),
          g.memoryMib() + " MiB",
          g.memoryUsedMib() < 0 ? "?" : g.memoryUsedMib() + " MiB",
          g.utilisation() < 0 ? "?" : g.utilisation() + "%",
          g.temperatureC() < 0 ? "?" : g.temperatureC() + "C",
          g.powerWatts() < 0 ? "?" : String.format(Locale.ROOT, "%.0fW", g.powerWatts()),
          g.mig() ? "on" : "off",
          g.uuid(),
          claims.holder(g).orElse("-"));
    }
    return 0;
  }

  /** Whether this host's runsc can put these GPUs in a sandbox. */
  private String nvproxy(GpuHost host) {
    List<String> drivers;
    try (ImageStore s = ImageStore.open(store.home());
        SandboxRuntime rt = SandboxRuntime.open(s, runtime.config(null, false))) {
      drivers = rt.gpuDrivers();
    } catch (Exception e) {
      return "nvproxy support unknown (" + e.getMessage() + ")";
    }
    if (drivers.isEmpty()) {
      return "this runsc has no nvproxy: sandboxes get no GPUs (runsc 2024-07 or later has it)";
    }
    return drivers.contains(host.driverVersion())
        ? "runsc's nvproxy supports this driver"
        : "runsc's nvproxy does NOT support this driver (it supports "
            + String.join(", ", drivers)
            + "): sandboxes get no GPUs";
  }
}
