package dev.skiff.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.gpu.testing.FakeGpuHost;
import dev.skiff.runtime.SandboxOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a sandbox with GPUs gets, on a host made to look like one with the 550.90.07 driver: fake
 * device nodes (real character devices with the driver's numbers, made with mknod, which needs
 * root) and fake driver libraries. The runtime's side (the spec's devices, the runsc flag) is
 * tested in the runtime module's RuntimePartsTest.
 */
class GpuSandboxTest {
  @TempDir Path tmp;
  Path dev;
  Path lib;
  Path bin;
  DriverFiles files;

  static final String DRIVER = "550.90.07";
  static final List<String> SUPPORTED = List.of("535.129.03", "550.54.15", DRIVER);

  static Gpu gpu(int index, int minor) {
    return new Gpu(
        index,
        minor,
        "NVIDIA H100 80GB HBM3",
        "H100",
        "GPU-" + index + "0000000-0000-0000-0000-000000000000",
        81559,
        0,
        0,
        30,
        70,
        false);
  }

  static final GpuHost HOST =
      new GpuHost("nvml", DRIVER, "12.4", List.of(gpu(0, 0), gpu(1, 1), gpu(2, 4)), "");

  private static void mknod(Path p, int major, int minor) throws Exception {
    FakeGpuHost.mknod(p, major, minor);
  }

  @BeforeEach
  void aHostWithTheDriver() throws Exception {
    dev = Files.createDirectories(tmp.resolve("dev"));
    mknod(dev.resolve("nvidiactl"), 195, 255);
    mknod(dev.resolve("nvidia-uvm"), 510, 0);
    for (int minor : new int[] {0, 1, 4}) {
      mknod(dev.resolve("nvidia" + minor), 195, minor);
    }
    lib = Files.createDirectories(tmp.resolve("usr/lib/x86_64-linux-gnu"));
    for (String l : List.of("libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler")) {
      Files.writeString(lib.resolve(l + ".so." + DRIVER), l + " of " + DRIVER);
    }
    Files.writeString(lib.resolve("libcuda.so.535.129.03"), "an older driver's, left behind");
    Files.writeString(lib.resolve("libssl.so.3"), "not the driver's");
    bin = Files.createDirectories(tmp.resolve("usr/bin"));
    Files.writeString(bin.resolve("nvidia-smi"), "#!/bin/sh\necho smi\n");
    bin.resolve("nvidia-smi").toFile().setExecutable(true);
    files = new DriverFiles(dev, List.of(lib), List.of(bin));
  }

  @Test
  void aSandboxGetsItsGpusNodesTheDriversFilesAndTheEnvironment() throws IOException {
    GpuSandbox g = new GpuSandbox(HOST, files, tmp.resolve("staging"), SUPPORTED);
    SandboxOptions o =
        g.give(SandboxOptions.builder(), List.of(HOST.gpus().get(0), HOST.gpus().get(2))).build();
    assertEquals(
        List.of(
            new SandboxOptions.Device("/dev/nvidiactl", 195, 255),
            new SandboxOptions.Device("/dev/nvidia-uvm", 510, 0),
            new SandboxOptions.Device("/dev/nvidia0", 195, 0),
            new SandboxOptions.Device("/dev/nvidia4", 195, 4)),
        o.devices(),
        "the GPUs given (by their minor numbers) and the driver's two; not GPU 1");
    assertEquals(
        List.of(
            "NVIDIA_VISIBLE_DEVICES=0,2",
            "CUDA_VISIBLE_DEVICES=GPU-00000000-0000-0000-0000-000000000000,GPU-20000000-0000-0000-0000-000000000000"),
        o.env());
    assertEquals(1, o.volumes().size());
    SandboxOptions.Volume v = o.volumes().get(0);
    assertEquals("/usr/local/nvidia", v.target());
    assertTrue(v.readOnly(), "the driver's files are read-only");

    // What is bound: this driver's libraries under their sonames, and its tools; nothing else.
    Path d = v.source();
    assertEquals(
        List.of(
            "libcuda.so",
            "libcuda.so.1",
            "libcuda.so." + DRIVER,
            "libnvidia-ml.so",
            "libnvidia-ml.so.1",
            "libnvidia-ml.so." + DRIVER,
            "libnvidia-ptxjitcompiler.so",
            "libnvidia-ptxjitcompiler.so.1",
            "libnvidia-ptxjitcompiler.so." + DRIVER),
        list(d.resolve("lib64")));
    assertEquals("libcuda of " + DRIVER, Files.readString(d.resolve("lib64/libcuda.so.1")));
    assertEquals(List.of("nvidia-smi"), list(d.resolve("bin")));
    // A second sandbox reuses the same directory.
    SandboxOptions again = g.give(SandboxOptions.builder(), List.of(HOST.gpus().get(1))).build();
    assertEquals(d, again.volumes().get(0).source());
  }

  private static List<String> list(Path dir) throws IOException {
    try (var s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void aDriverNvproxyDoesNotKnowIsRefusedByVersion() {
    GpuHost newer = new GpuHost("nvml", "560.28.03", "12.6", HOST.gpus(), "");
    GpuSandbox g = new GpuSandbox(newer, files, tmp.resolve("staging"), SUPPORTED);
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () -> g.give(SandboxOptions.builder(), List.of(HOST.gpus().get(0))));
    assertTrue(e.getMessage().contains("NVIDIA driver 560.28.03 is not one"), e.getMessage());
    assertTrue(e.getMessage().contains("550.54.15"), "lists what is supported: " + e.getMessage());

    GpuSandbox old = new GpuSandbox(HOST, files, tmp.resolve("staging"), List.of());
    IllegalStateException none =
        assertThrows(
            IllegalStateException.class,
            () -> old.give(SandboxOptions.builder(), List.of(HOST.gpus().get(0))));
    assertTrue(none.getMessage().contains("no nvproxy"), none.getMessage());
  }

  @Test
  void theOperatorsChoiceRunsAnUnknownDriversGpusUnderRunc() throws IOException {
    GpuHost newer = new GpuHost("nvml", "560.28.03", "12.6", HOST.gpus(), "");
    Files.writeString(lib.resolve("libcuda.so.560.28.03"), "libcuda");
    Files.writeString(lib.resolve("libnvidia-ml.so.560.28.03"), "libnvidia-ml");
    GpuSandbox g = new GpuSandbox(newer, files, tmp.resolve("staging"), SUPPORTED, true, null);
    assertTrue(g.runsWithoutGvisor());
    SandboxOptions o = g.give(SandboxOptions.builder(), List.of(HOST.gpus().get(0))).build();
    assertTrue(o.runc(), "under runc");
    assertEquals(3, o.devices().size());
    // A driver nvproxy knows stays under gVisor, whatever the choice.
    GpuSandbox known = new GpuSandbox(HOST, files, tmp.resolve("staging"), SUPPORTED, true, null);
    assertTrue(!known.runsWithoutGvisor());
    assertTrue(!known.give(SandboxOptions.builder(), List.of(HOST.gpus().get(0))).build().runc());
  }

  @Test
  void missingPartsOfTheDriverAreNamed() throws Exception {
    GpuSandbox g = new GpuSandbox(HOST, files, tmp.resolve("staging"), SUPPORTED);
    Files.delete(dev.resolve("nvidia-uvm"));
    IOException uvm =
        assertThrows(
            IOException.class, () -> g.give(SandboxOptions.builder(), List.of(HOST.gpus().get(0))));
    assertTrue(uvm.getMessage().contains("modprobe nvidia-uvm"), uvm.getMessage());
    mknod(dev.resolve("nvidia-uvm"), 510, 0);

    Files.delete(dev.resolve("nvidia4"));
    Files.writeString(dev.resolve("nvidia4"), "a plain file");
    IOException plain =
        assertThrows(
            IOException.class, () -> g.give(SandboxOptions.builder(), List.of(HOST.gpus().get(2))));
    assertTrue(plain.getMessage().contains("not a character device"), plain.getMessage());

    Files.delete(lib.resolve("libcuda.so." + DRIVER));
    IOException cuda =
        assertThrows(
            IOException.class, () -> g.give(SandboxOptions.builder(), List.of(HOST.gpus().get(0))));
    assertTrue(
        cuda.getMessage().contains("libcuda.so." + DRIVER + " is not in"), cuda.getMessage());
    assertEquals(List.of(), list(tmp.resolve("staging")), "nothing half-made is left");
  }
}
