package dev.skiff.gpu;

import dev.skiff.runtime.SandboxOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * Gives GPUs to a sandbox through gVisor's nvproxy: their device nodes and the driver's control
 * nodes (nvproxy makes device files for these and no others), the driver's user-space files
 * read-only at {@link DriverFiles#MOUNT}, and {@code NVIDIA_VISIBLE_DEVICES} (the host's indices)
 * and {@code CUDA_VISIBLE_DEVICES} (their UUIDs, which CUDA matches whatever order it counts in).
 * Nothing else of the host is exposed.
 *
 * @param host the host's GPUs and driver
 * @param files where the driver's nodes and files are on the host
 * @param staging where the driver's files are gathered per version
 * @param supportedDrivers the driver versions this runsc's nvproxy accepts ({@code runsc nvproxy
 *     list-supported-drivers})
 * @param withoutGvisor the operator's choice, off by default: where nvproxy does not accept the
 *     driver, run GPU sandboxes under runc instead of refusing them (trusted code only: there is no
 *     second kernel between it and the host)
 * @param inventory where {@link #sample} reads the GPUs again (null: never)
 */
public record GpuSandbox(
    GpuHost host,
    DriverFiles files,
    Path staging,
    List<String> supportedDrivers,
    boolean withoutGvisor,
    GpuInventory inventory) {

  /** GPU sandboxes under gVisor only, never sampled. */
  public GpuSandbox(GpuHost host, DriverFiles files, Path staging, List<String> supportedDrivers) {
    this(host, files, staging, supportedDrivers, false, null);
  }

  /**
   * What {@link #host}'s GPUs are doing now, by their position in it (matched by UUID; a GPU no
   * longer read is left out); empty without an inventory to read.
   */
  public Map<Integer, Gpu> sample() {
    Map<Integer, Gpu> out = new TreeMap<>();
    if (inventory == null) {
      return out;
    }
    GpuHost now = inventory.read();
    for (int i = 0; i < host.gpus().size(); i++) {
      String uuid = host.gpus().get(i).uuid();
      for (Gpu g : now.gpus()) {
        if (g.uuid().equals(uuid)) {
          out.put(i, g);
        }
      }
    }
    return out;
  }

  /**
   * Whether GPU sandboxes here run under runc (nvproxy refuses the driver, the operator allows).
   */
  public boolean runsWithoutGvisor() {
    return withoutGvisor && !supportedDrivers.contains(host.driverVersion());
  }

  /**
   * Adds {@code gpus} to {@code options}.
   *
   * @throws IllegalStateException if nvproxy does not accept this host's driver: the message names
   *     the driver and the versions it does accept
   * @throws IOException if a device node or the driver's libraries are missing
   */
  public SandboxOptions.Builder give(SandboxOptions.Builder options, List<Gpu> gpus)
      throws IOException {
    if (gpus.isEmpty()) {
      return options;
    }
    if (runsWithoutGvisor()) {
      options.runc(true);
    } else {
      checkDriver();
    }
    for (SandboxOptions.Device d : files.devices(gpus)) {
      options.device(d);
    }
    Path driver = files.stage(host.driverVersion(), staging);
    options.volume(new SandboxOptions.Volume(driver, DriverFiles.MOUNT, true));
    options.env(
        "NVIDIA_VISIBLE_DEVICES="
            + gpus.stream().map(g -> Integer.toString(g.index())).collect(Collectors.joining(",")));
    options.env(
        "CUDA_VISIBLE_DEVICES=" + gpus.stream().map(Gpu::uuid).collect(Collectors.joining(",")));
    return options;
  }

  /** Refuses a driver that this runsc's nvproxy does not know. */
  void checkDriver() {
    if (supportedDrivers.isEmpty()) {
      throw new IllegalStateException(
          "this runsc has no nvproxy: GPUs in a sandbox need runsc 2024-07 or later (Debian's"
              + " bookworm-backports has it)");
    }
    if (!supportedDrivers.contains(host.driverVersion())) {
      throw new IllegalStateException(
          "NVIDIA driver "
              + (host.driverVersion().isEmpty() ? "(none found)" : host.driverVersion())
              + " is not one this runsc's nvproxy supports ("
              + String.join(", ", supportedDrivers)
              + "): install one of those drivers or a runsc whose nvproxy knows this one, or, for"
              + " trusted code only, run GPU sandboxes without gVisor (--gpus-without-gvisor)");
    }
  }
}
