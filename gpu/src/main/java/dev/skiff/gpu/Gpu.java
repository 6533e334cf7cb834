package dev.skiff.gpu;

/**
 * One GPU of a host, as NVML or {@code nvidia-smi} report it.
 *
 * @param index the driver's index (what {@code nvidia-smi} and {@code CUDA_VISIBLE_DEVICES} count)
 * @param minor the minor number of its device node, {@code /dev/nvidiaMINOR}
 * @param model the driver's model name ("NVIDIA H100 80GB HBM3")
 * @param type the model as functions request it ({@code H100}; see {@link GpuTypes}), or null for a
 *     model no request can name
 * @param uuid {@code GPU-...}
 * @param memoryMib memory in MiB
 * @param memoryUsedMib memory in use, MiB
 * @param utilisation percent of the last sample period the GPU was busy, -1 if unknown
 * @param temperatureC degrees Celsius, -1 if unknown
 * @param powerWatts power draw in watts, -1 if unknown
 * @param mig whether MIG mode is on (its GPU instances are not handed out one by one: a MIG GPU is
 *     given whole or not at all)
 */
public record Gpu(
    int index,
    int minor,
    String model,
    String type,
    String uuid,
    long memoryMib,
    long memoryUsedMib,
    int utilisation,
    int temperatureC,
    double powerWatts,
    boolean mig) {}
