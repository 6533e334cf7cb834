package dev.skiff.gpu;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads a host's GPUs: through NVML where the driver's library loads, else through {@code
 * nvidia-smi}, else none. Where to look is configurable so that tests (and hosts with the driver in
 * unusual places) can point it elsewhere: {@code SKIFF_NVML} (a path to {@code libnvidia-ml.so.1}),
 * {@code SKIFF_NVIDIA_SMI} (a path to {@code nvidia-smi}).
 *
 * @param nvml the library, or null to look where drivers install it
 * @param smi the {@code nvidia-smi} to run
 * @param procRoot {@code /proc}, where the driver lists its GPUs' device minor numbers
 */
public record GpuInventory(Path nvml, String smi, Path procRoot) {
  private static final Logger LOG = LoggerFactory.getLogger(GpuInventory.class);

  /** This host's places, as the environment overrides them. */
  public static GpuInventory fromEnvironment() {
    String nvml = System.getenv("SKIFF_NVML");
    String smi = System.getenv("SKIFF_NVIDIA_SMI");
    return new GpuInventory(
        nvml == null || nvml.isBlank() ? null : Path.of(nvml),
        smi == null || smi.isBlank() ? "nvidia-smi" : smi,
        Path.of("/proc"));
  }

  /**
   * The GPUs here. NVML is tried first; where it cannot be loaded or fails, nvidia-smi; where that
   * cannot run either, none ({@link GpuHost#none}), which is what a host without a driver has.
   */
  public GpuHost read() {
    Optional<Nvml.Lib> lib = Nvml.load(nvml);
    if (lib.isPresent()) {
      try {
        return Nvml.read(lib.get());
      } catch (RuntimeException e) {
        LOG.warn("NVML failed ({}); asking nvidia-smi", e.getMessage());
      }
    }
    try {
      return NvidiaSmi.read(smi, procRoot);
    } catch (IOException | RuntimeException e) {
      LOG.debug("no GPUs: {}", e.getMessage());
      return GpuHost.none(e.getMessage());
    }
  }
}
