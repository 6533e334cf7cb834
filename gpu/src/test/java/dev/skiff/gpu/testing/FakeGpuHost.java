package dev.skiff.gpu.testing;

import dev.skiff.gpu.GpuInventory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * A host made to look like one with NVIDIA GPUs, for tests on machines without any: a fake {@code
 * nvidia-smi} that prints the given GPUs (the query's CSV, and a table with the CUDA version), the
 * driver's device nodes under a root of its own (real character devices with the driver's numbers,
 * made with mknod, which needs root: a test without it is skipped), and the driver's two libraries.
 * {@link #env()} points Skiff at it; {@link #inventory()} reads it in process.
 */
public final class FakeGpuHost {
  public final Path smi;
  public final Path root;
  public final String driver;

  private FakeGpuHost(Path smi, Path root, String driver) {
    this.smi = smi;
    this.root = root;
    this.driver = driver;
  }

  /** One GPU as {@code nvidia-smi --query-gpu} prints it, minor number = index. */
  public record Card(String model, String uuid, long memoryMib, long usedMib, int utilisation) {
    String csv(int index, String driver) {
      return String.format(
          "%d, %s, %s, %d, %d, %d, 61, 300.00, Disabled, %s, 00000000:%02X:00.0",
          index, model, uuid, memoryMib, usedMib, utilisation, driver, 0x1B + index);
    }
  }

  public static Card h100(char id) {
    return new Card(
        "NVIDIA H100 80GB HBM3",
        "GPU-" + String.valueOf(id).repeat(8) + "-0000-0000-0000-000000000000",
        81559,
        0,
        0);
  }

  /** A host with {@code cards} (the n-th is GPU n, /dev/nvidia{n}) and driver {@code driver}. */
  public static FakeGpuHost create(Path dir, String driver, List<Card> cards) throws Exception {
    Files.createDirectories(dir);
    StringBuilder csv = new StringBuilder();
    for (int i = 0; i < cards.size(); i++) {
      csv.append(cards.get(i).csv(i, driver)).append('\n');
    }
    Path query = dir.resolve("query.csv");
    Files.writeString(query, csv);
    Path smi = dir.resolve("nvidia-smi");
    Files.writeString(
        smi,
        "#!/bin/sh\ncase \"$1\" in --query-gpu=*) cat '"
            + query
            + "';; *) echo '| Driver Version: "
            + driver
            + "   CUDA Version: 12.4 |';; esac\n");
    Files.setPosixFilePermissions(smi, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path root = dir.resolve("driver-root");
    Path dev = Files.createDirectories(root.resolve("dev"));
    mknod(dev.resolve("nvidiactl"), 195, 255);
    mknod(dev.resolve("nvidia-uvm"), 510, 0);
    for (int i = 0; i < cards.size(); i++) {
      mknod(dev.resolve("nvidia" + i), 195, i);
    }
    Path lib = Files.createDirectories(root.resolve("usr/lib/x86_64-linux-gnu"));
    Files.writeString(lib.resolve("libcuda.so." + driver), "libcuda");
    Files.writeString(lib.resolve("libnvidia-ml.so." + driver), "libnvidia-ml");
    return new FakeGpuHost(smi, root, driver);
  }

  /** Makes a character device node, skipping the test where that is not allowed (not root). */
  public static void mknod(Path p, int major, int minor) throws IOException, InterruptedException {
    Process m =
        new ProcessBuilder("mknod", p.toString(), "c", "" + major, "" + minor)
            .redirectErrorStream(true)
            .start();
    String out = new String(m.getInputStream().readAllBytes());
    m.waitFor(10, TimeUnit.SECONDS);
    Assumptions.assumeTrue(
        m.exitValue() == 0, "fake device nodes need root (mknod): " + out.strip());
  }

  /** The environment that points Skiff's inventory and driver files here (and away from NVML). */
  public Map<String, String> env() {
    return Map.of(
        "SKIFF_NVIDIA_SMI", smi.toString(),
        "SKIFF_NVML", root.resolve("no-nvml.so").toString(),
        "SKIFF_GPU_ROOT", root.toString());
  }

  /** The inventory as Skiff reads it with {@link #env()}, in this process. */
  public GpuInventory inventory() {
    return new GpuInventory(root.resolve("no-nvml.so"), smi.toString(), root);
  }
}
