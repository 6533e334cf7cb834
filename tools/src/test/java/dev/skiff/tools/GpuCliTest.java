package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.Environment;
import dev.skiff.gpu.Gpu;
import dev.skiff.gpu.GpuClaims;
import dev.skiff.gpu.testing.FakeGpuHost;
import dev.skiff.runtime.testing.HostRootfs;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code skiff gpus} and {@code skiff run --gpu} as a user runs them, on a host made to look like
 * one with two H100s and an L4: a fake nvidia-smi ({@code $SKIFF_NVIDIA_SMI}) and the driver's
 * device nodes (mknod, as root) and libraries under {@code $SKIFF_GPU_ROOT}. No sandbox can get a
 * GPU here (runsc's nvproxy needs the real driver), so the runs tried are those refused before one
 * starts, each with what to do.
 */
@Timeout(300)
class GpuCliTest {
  @TempDir Path tmp;
  String home;
  Map<String, String> env;

  private void host(String driver) throws Exception {
    env =
        FakeGpuHost.create(
                tmp.resolve("gpu-host"),
                driver,
                List.of(
                    FakeGpuHost.h100('a'),
                    FakeGpuHost.h100('b'),
                    new FakeGpuHost.Card(
                        "NVIDIA L4", "GPU-cccccccc-0000-0000-0000-000000000000", 23034, 0, 0)))
            .env();
  }

  @BeforeEach
  void setUp() throws Exception {
    Environment.requireRunsc();
    home = tmp.resolve("home").toString();
    Path rootfs = HostRootfs.tools().build(tmp.resolve("rootfs"));
    Cli.run(0, "import", "-q", "--store", home, rootfs.toString(), "tools:1");
  }

  private SkiffProcess skiff(String... args) throws Exception {
    List<String> all = new java.util.ArrayList<>(List.of(args));
    all.add(1, "--store=" + home);
    SkiffProcess p = new SkiffProcess(env, List.of(), all.toArray(String[]::new));
    p.exit();
    return p;
  }

  @Test
  void gpusListsTheHostsGpusAndWhoHoldsThem() throws Exception {
    host("550.90.07");
    GpuClaims claims = GpuClaims.of(Path.of(home));
    Gpu second =
        new Gpu(
            1,
            1,
            "NVIDIA H100 80GB HBM3",
            "H100",
            "GPU-bbbbbbbb-0000-0000-0000-000000000000",
            81559,
            3,
            0,
            31,
            68,
            false);
    try (GpuClaims.Claim held =
        claims.claim(List.of(second), 1, "container c-42 of app/f").orElseThrow()) {
      SkiffProcess gpus = skiff("gpus");
      assertEquals(0, gpus.process.exitValue(), gpus.err());
      String out = gpus.out();
      assertTrue(out.startsWith("driver 550.90.07, CUDA 12.4 (read through nvidia-smi); "), out);
      List<String> rows = out.lines().skip(2).toList();
      assertEquals(3, rows.size(), out);
      assertTrue(
          rows.get(0).matches("0 +H100 +NVIDIA H100 80GB HBM3 +81559 MiB .* -$"), rows.get(0));
      assertTrue(rows.get(1).endsWith("container c-42 of app/f"), rows.get(1));
      assertTrue(rows.get(2).matches("2 +L4 +NVIDIA L4 .*GPU-cccccccc.* -$"), rows.get(2));
    }
  }

  @Test
  void runRefusesWhatItCannotGiveAndSaysWhatToDo() throws Exception {
    host("550.90.07");
    SkiffProcess unknown = skiff("run", "--gpu", "H900", "tools:1", "--", "true");
    assertEquals(1, unknown.process.exitValue());
    assertTrue(
        unknown.err().contains("unknown GPU type 'H900': want one of B200, H200, H100"),
        unknown.err());

    SkiffProcess none = skiff("run", "--gpu", "H200,A100-80GB", "tools:1", "--", "true");
    assertEquals(1, none.process.exitValue());
    assertTrue(
        none.err()
            .contains(
                "no free GPUs for H200, A100-80GB on this host: it has 2 H100 (2 free), 1 L4 (1"
                    + " free)"),
        none.err());

    SkiffProcess tooMany = skiff("run", "--gpu", "any:3", "tools:1", "--", "true");
    assertTrue(tooMany.err().contains("no free GPUs for any:3"), tooMany.err());
  }

  @Test
  void aDriverThisRunscsNvproxyDoesNotKnowIsRefusedByVersion() throws Exception {
    host("999.1.2");
    SkiffProcess run = skiff("run", "--gpu", "H100", "tools:1", "--", "true");
    assertEquals(1, run.process.exitValue());
    String err = run.err();
    assertTrue(
        err.contains("NVIDIA driver 999.1.2 is not one this runsc's nvproxy supports (")
            || err.contains("this runsc has no nvproxy"),
        err);
    // The GPU it had claimed is free again.
    assertTrue(skiff("gpus").out().lines().skip(2).allMatch(l -> l.endsWith(" -")));

    // The operator's choice: the same run under runc, which makes the GPU's nodes itself (no
    // driver is needed to see them), with the driver's files and the environment.
    SkiffProcess trusted =
        skiff(
            "run",
            "--gpu",
            "H100",
            "--gpus-without-gvisor",
            "tools:1",
            "--",
            "sh",
            "-c",
            "echo nodes /dev/nvidia*; echo $NVIDIA_VISIBLE_DEVICES $CUDA_VISIBLE_DEVICES;"
                + " ls /usr/local/nvidia/lib64");
    assertEquals(0, trusted.process.exitValue(), trusted.err());
    assertEquals(
        List.of(
            "nodes /dev/nvidia-uvm /dev/nvidia0 /dev/nvidiactl",
            "0 GPU-aaaaaaaa-0000-0000-0000-000000000000",
            "libcuda.so",
            "libcuda.so.1",
            "libcuda.so.999.1.2",
            "libnvidia-ml.so",
            "libnvidia-ml.so.1",
            "libnvidia-ml.so.999.1.2"),
        trusted.out().lines().toList());
  }
}
