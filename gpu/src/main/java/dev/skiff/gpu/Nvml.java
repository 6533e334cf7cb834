package dev.skiff.gpu;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Pointer;
import jnr.ffi.annotations.Out;
import jnr.ffi.byref.PointerByReference;

/**
 * The inventory through NVML ({@code libnvidia-ml.so.1}, which every NVIDIA driver installs), bound
 * with jnr-ffi: no process to start, and the same numbers {@code nvidia-smi} prints (it is built on
 * it). Each call of {@link #read} initialises NVML and shuts it down again.
 */
public final class Nvml {
  private Nvml() {}

  /** The NVML entry points used, as C declares them (nvml.h). */
  public interface Lib {
    int nvmlInit_v2();

    int nvmlShutdown();

    String nvmlErrorString(int result);

    int nvmlSystemGetDriverVersion(@Out byte[] version, int length);

    int nvmlSystemGetCudaDriverVersion_v2(@Out int[] version);

    int nvmlDeviceGetCount_v2(@Out int[] count);

    int nvmlDeviceGetHandleByIndex_v2(int index, PointerByReference device);

    int nvmlDeviceGetName(Pointer device, @Out byte[] name, int length);

    int nvmlDeviceGetUUID(Pointer device, @Out byte[] uuid, int length);

    int nvmlDeviceGetMinorNumber(Pointer device, @Out int[] minor);

    /** nvmlMemory_t: total, free, used (unsigned long long each). */
    int nvmlDeviceGetMemoryInfo(Pointer device, @Out long[] memory);

    /** nvmlUtilization_t: gpu, memory (unsigned int each, percent). */
    int nvmlDeviceGetUtilizationRates(Pointer device, @Out int[] utilisation);

    int nvmlDeviceGetTemperature(Pointer device, int sensor, @Out int[] celsius);

    int nvmlDeviceGetPowerUsage(Pointer device, @Out int[] milliwatts);

    int nvmlDeviceGetMigMode(Pointer device, @Out int[] current, @Out int[] pending);
  }

  private static final int SUCCESS = 0;
  private static final int TEMPERATURE_GPU = 0;

  /** Where the driver's libraries are usually installed. */
  static final List<String> LIBRARY_DIRS =
      List.of(
          "/usr/lib/x86_64-linux-gnu",
          "/usr/lib/aarch64-linux-gnu",
          "/usr/lib64",
          "/usr/lib",
          "/usr/local/nvidia/lib64",
          "/usr/local/nvidia/lib");

  /**
   * NVML, from {@code explicit} (a path to the library) if given, else from where drivers install
   * it; empty where there is none.
   */
  public static Optional<Lib> load(Path explicit) {
    List<Path> candidates = new ArrayList<>();
    if (explicit != null) {
      candidates.add(explicit);
    } else {
      for (String d : LIBRARY_DIRS) {
        candidates.add(Path.of(d, "libnvidia-ml.so.1"));
      }
    }
    for (Path p : candidates) {
      if (Files.isRegularFile(p)) {
        try {
          return Optional.of(LibraryLoader.create(Lib.class).failImmediately().load(p.toString()));
        } catch (LinkageError | RuntimeException e) {
          if (explicit != null) {
            throw new IllegalStateException("cannot load NVML from " + p + ": " + e.getMessage());
          }
        }
      }
    }
    return Optional.empty();
  }

  /**
   * The host's GPUs through {@code lib}.
   *
   * @throws IllegalStateException if NVML fails (no driver loaded, say), with its own message
   */
  public static GpuHost read(Lib lib) {
    check(lib, lib.nvmlInit_v2(), "nvmlInit");
    try {
      byte[] text = new byte[96];
      check(lib, lib.nvmlSystemGetDriverVersion(text, text.length), "driver version");
      String driver = string(text);
      int[] one = new int[1];
      String cuda = "";
      if (lib.nvmlSystemGetCudaDriverVersion_v2(one) == SUCCESS) {
        cuda = one[0] / 1000 + "." + (one[0] % 1000) / 10;
      }
      check(lib, lib.nvmlDeviceGetCount_v2(one), "device count");
      List<Gpu> gpus = new ArrayList<>();
      for (int i = 0; i < one[0]; i++) {
        PointerByReference ref = new PointerByReference();
        check(lib, lib.nvmlDeviceGetHandleByIndex_v2(i, ref), "device " + i);
        Pointer d = ref.getValue();
        check(lib, lib.nvmlDeviceGetName(d, text, text.length), "name of device " + i);
        String model = string(text);
        check(lib, lib.nvmlDeviceGetUUID(d, text, text.length), "UUID of device " + i);
        String uuid = string(text);
        int[] minor = {i};
        lib.nvmlDeviceGetMinorNumber(d, minor);
        long[] mem = new long[3];
        check(lib, lib.nvmlDeviceGetMemoryInfo(d, mem), "memory of device " + i);
        int[] util = {-1, -1};
        lib.nvmlDeviceGetUtilizationRates(d, util);
        int[] temp = {-1};
        lib.nvmlDeviceGetTemperature(d, TEMPERATURE_GPU, temp);
        int[] mw = {-1};
        boolean power = lib.nvmlDeviceGetPowerUsage(d, mw) == SUCCESS;
        int[] mig = {0};
        int[] pending = {0};
        boolean migOn = lib.nvmlDeviceGetMigMode(d, mig, pending) == SUCCESS && mig[0] == 1;
        long memoryMib = mem[0] >> 20;
        gpus.add(
            new Gpu(
                i,
                minor[0],
                model,
                GpuTypes.of(model, memoryMib),
                uuid,
                memoryMib,
                mem[2] >> 20,
                util[0],
                temp[0],
                power ? mw[0] / 1000.0 : -1,
                migOn));
      }
      return new GpuHost("nvml", driver, cuda, gpus, "");
    } finally {
      lib.nvmlShutdown();
    }
  }

  private static void check(Lib lib, int result, String what) {
    if (result != SUCCESS) {
      throw new IllegalStateException(
          "NVML: " + what + ": " + lib.nvmlErrorString(result) + " (" + result + ")");
    }
  }

  private static String string(byte[] c) {
    int n = 0;
    while (n < c.length && c[n] != 0) {
      n++;
    }
    return new String(c, 0, n, StandardCharsets.UTF_8);
  }
}
