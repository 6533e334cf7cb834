package dev.skiff.gpu;

import java.util.List;

/**
 * A host's GPUs and driver: what {@code skiff gpus} prints and what a worker offers.
 *
 * @param source where it was read: {@code nvml}, {@code nvidia-smi}, or {@code none} (no driver: no
 *     GPUs)
 * @param driverVersion the kernel driver's version ("550.90.07"), empty without one
 * @param cudaVersion the newest CUDA the driver runs ("12.4"), empty if unknown
 * @param note why there are none, where that is known ("nvidia-smi failed: ..."); empty otherwise
 */
public record GpuHost(
    String source, String driverVersion, String cudaVersion, List<Gpu> gpus, String note) {
  public GpuHost {
    gpus = List.copyOf(gpus);
  }

  /** A host without NVIDIA's driver, or where it could not be read ({@code why}). */
  public static GpuHost none(String why) {
    return new GpuHost("none", "", "", List.of(), why);
  }

  /**
   * What a worker offers, by index: each GPU's type, or its model name where no request names it
   * (such a GPU is taken only by {@code any}).
   */
  public List<String> offered() {
    return gpus.stream().map(g -> g.type() != null ? g.type() : g.model()).toList();
  }
}
