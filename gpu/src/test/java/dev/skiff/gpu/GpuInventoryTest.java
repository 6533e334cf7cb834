package dev.skiff.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The inventory without a GPU: through an NVML stand-in (a C library with nvml.h's signatures and
 * struct layouts, built here) and through a fake {@code nvidia-smi} that prints what the real one
 * prints on a host with six GPUs, with the driver's {@code /proc} files for the minor numbers.
 */
class GpuInventoryTest {
  @TempDir Path tmp;

  /** What nvidia-smi 550 prints for the query, on a host with mixed GPUs. */
  static final String QUERY =
      """
      0, NVIDIA H100 80GB HBM3, GPU-11111111-2222-3333-4444-555555555555, 81559, 1024, 42, 61, 312.50, [N/A], 550.90.07, 00000000:1B:00.0
      1, NVIDIA H100 80GB HBM3, GPU-22222222-2222-3333-4444-555555555555, 81559, 0, 0, 35, 70.12, Disabled, 550.90.07, 00000000:3B:00.0
      2, NVIDIA A100-SXM4-40GB, GPU-33333333-2222-3333-4444-555555555555, 40960, 0, 0, 30, 55.00, Enabled, 550.90.07, 00000000:4C:00.0
      3, NVIDIA A100 80GB PCIe, GPU-44444444-2222-3333-4444-555555555555, 81920, 0, 0, 30, [N/A], Disabled, 550.90.07, 00000000:5D:00.0
      4, NVIDIA L4, GPU-55555555-2222-3333-4444-555555555555, 23034, 0, 3, 40, 16.00, [N/A], 550.90.07, 00000000:9A:00.0
      5, Quadro RTX 8000, GPU-66666666-2222-3333-4444-555555555555, 49152, 0, 0, 30, 20.00, [N/A], 550.90.07, 00000000:AB:00.0
      """;

  static final String PLAIN =
      """
      +-----------------------------------------------------------------------------------------+
      | NVIDIA-SMI 550.90.07              Driver Version: 550.90.07      CUDA Version: 12.4     |
      |-----------------------------------------+------------------------+----------------------+
      """;

  /** A fake nvidia-smi: the query's CSV for --query-gpu, the table otherwise. */
  static Path fakeSmi(Path dir, String query, String plain, int exit) throws IOException {
    Files.writeString(dir.resolve("query.csv"), query);
    Files.writeString(dir.resolve("plain.txt"), plain);
    Path smi = dir.resolve("nvidia-smi");
    Files.writeString(
        smi,
        "#!/bin/sh\n"
            + "case \"$1\" in --query-gpu=*) cat '"
            + dir.resolve("query.csv")
            + "';; *) cat '"
            + dir.resolve("plain.txt")
            + "';; esac\nexit "
            + exit
            + "\n");
    Files.setPosixFilePermissions(smi, PosixFilePermissions.fromString("rwxr-xr-x"));
    return smi;
  }

  @Test
  void nvidiaSmiIsReadAndItsModelsNormalised() throws IOException {
    Path smi = fakeSmi(tmp, QUERY, PLAIN, 0);
    // The driver numbers its device nodes by its own order, not nvidia-smi's index.
    Path proc = tmp.resolve("proc");
    Path info = Files.createDirectories(proc.resolve("driver/nvidia/gpus/0000:3b:00.0"));
    Files.writeString(
        info.resolve("information"),
        "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 123\nDevice Minor: \t 5\n");

    GpuHost host = new GpuInventory(tmp.resolve("no-nvml.so"), smi.toString(), proc).read();
    assertEquals("nvidia-smi", host.source());
    assertEquals("550.90.07", host.driverVersion());
    assertEquals("12.4", host.cudaVersion());
    assertEquals(
        List.of("H100", "H100", "A100-40GB", "A100-80GB", "L4", "Quadro RTX 8000"), host.offered());
    Gpu first = host.gpus().get(0);
    assertEquals(0, first.minor());
    assertEquals("GPU-11111111-2222-3333-4444-555555555555", first.uuid());
    assertEquals(81559, first.memoryMib());
    assertEquals(1024, first.memoryUsedMib());
    assertEquals(42, first.utilisation());
    assertEquals(61, first.temperatureC());
    assertEquals(312.5, first.powerWatts());
    assertFalse(first.mig());
    assertEquals(5, host.gpus().get(1).minor(), "from /proc, by bus id");
    assertTrue(host.gpus().get(2).mig());
    assertEquals(-1, host.gpus().get(3).powerWatts(), "[N/A] is unknown");
    assertNull(host.gpus().get(5).type(), "no request names a Quadro");
  }

  @Test
  void aFailingNvidiaSmiMeansNoGpusAndSaysWhy() throws IOException {
    Path smi =
        fakeSmi(
            tmp,
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n",
            "",
            9);
    GpuHost host = new GpuInventory(null, smi.toString(), tmp).read();
    assertEquals("none", host.source());
    assertTrue(host.gpus().isEmpty());
    assertTrue(host.note().contains("couldn't communicate"), host.note());

    GpuHost missing = new GpuInventory(null, tmp.resolve("no-such-smi").toString(), tmp).read();
    assertTrue(missing.note().contains("no NVIDIA driver is installed"), missing.note());
  }

  /** Builds the NVML stand-in with the host's C compiler. */
  static Path fakeNvml(Path dir) throws Exception {
    Path src = dir.resolve("fake_nvml.c");
    try (InputStream in = GpuInventoryTest.class.getResourceAsStream("fake_nvml.c")) {
      Files.write(src, in.readAllBytes());
    }
    Path lib = dir.resolve("libnvidia-ml.so.1");
    Process cc;
    try {
      cc =
          new ProcessBuilder("cc", "-shared", "-fPIC", "-o", lib.toString(), src.toString())
              .redirectErrorStream(true)
              .start();
    } catch (IOException e) {
      Assumptions.abort("needs a C compiler (cc) to build the NVML stand-in: " + e.getMessage());
      throw e;
    }
    String out = new String(cc.getInputStream().readAllBytes());
    assertTrue(cc.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, cc.exitValue(), out);
    return lib;
  }

  @Test
  void nvmlIsReadThroughTheBinding() throws Exception {
    Path lib = fakeNvml(tmp);
    // nvidia-smi is there too, and says something else: NVML comes first.
    Path smi = fakeSmi(tmp, QUERY, PLAIN, 0);
    GpuHost host = new GpuInventory(lib, smi.toString(), tmp).read();
    assertEquals("nvml", host.source());
    assertEquals("550.90.07", host.driverVersion());
    assertEquals("12.4", host.cudaVersion());
    assertEquals(List.of("H100", "A100-40GB"), host.offered());
    Gpu h100 = host.gpus().get(0);
    assertEquals(3, h100.minor());
    assertEquals("GPU-11111111-2222-3333-4444-555555555555", h100.uuid());
    assertEquals(81559, h100.memoryMib());
    assertEquals(1024, h100.memoryUsedMib());
    assertEquals(42, h100.utilisation());
    assertEquals(61, h100.temperatureC());
    assertEquals(312.5, h100.powerWatts());
    assertFalse(h100.mig(), "MIG not supported reads as off");
    Gpu a100 = host.gpus().get(1);
    assertEquals(7, a100.minor());
    assertEquals(40960, a100.memoryMib());
    assertTrue(a100.mig());
  }

  @Test
  void modelNamesBecomeRequestTypes() {
    assertEquals("H100", GpuTypes.of("NVIDIA H100 80GB HBM3", 81559));
    assertEquals("H100", GpuTypes.of("NVIDIA H100 PCIe", 0));
    assertEquals("H200", GpuTypes.of("NVIDIA H200", 143771));
    assertEquals("B200", GpuTypes.of("NVIDIA B200", 0));
    assertEquals("A100-80GB", GpuTypes.of("NVIDIA A100-SXM4-80GB", 81920));
    assertEquals("A100-40GB", GpuTypes.of("NVIDIA A100-PCIE-40GB", 40960));
    assertEquals("A100-80GB", GpuTypes.of("NVIDIA A100 PCIe", 81920), "by memory, not the name");
    assertEquals("L4", GpuTypes.of("NVIDIA L4", 23034));
    assertEquals("L40S", GpuTypes.of("NVIDIA L40S", 46068));
    assertEquals("A10G", GpuTypes.of("NVIDIA A10G", 23028));
    assertEquals("A10", GpuTypes.of("NVIDIA A10", 23028));
    assertEquals("T4", GpuTypes.of("Tesla T4", 15360));
    assertEquals("V100", GpuTypes.of("Tesla V100-SXM2-16GB", 16384));
    assertNull(GpuTypes.of("NVIDIA GeForce RTX 4090", 24564));
  }
}
