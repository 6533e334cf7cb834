package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.Environment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU device check (what gpu/device-check runs on a GPU host) against a fake GPU host: an H200
 * and an L4 in a fake nvidia-smi, the driver's nodes (mknod) and libraries. It must get through
 * every step and say what happened: the sandboxes cannot have the GPU here (runsc's nvproxy finds
 * no real driver, and the check says runsc's own words), the host run has no PyTorch, and the
 * summary names both.
 */
@Timeout(300)
class DeviceCheckTest {
  @TempDir Path tmp;

  @Test
  void theCheckRunsEveryStepAndSaysWhatRanWhere() throws Exception {
    Environment.requireRunsc();
    Path smi = tmp.resolve("nvidia-smi");
    Files.writeString(
        tmp.resolve("query.csv"),
        """
        0, NVIDIA H200, GPU-aaaaaaaa-0000-0000-0000-000000000000, 143771, 3, 0, 33, 69.90, Disabled, 550.90.07, 00000000:1B:00.0
        1, NVIDIA L4, GPU-cccccccc-0000-0000-0000-000000000000, 23034, 0, 0, 40, 16.00, [N/A], 550.90.07, 00000000:9A:00.0
        """);
    Files.writeString(
        smi,
        "#!/bin/sh\ncase \"$1\" in --query-gpu=*) cat '"
            + tmp.resolve("query.csv")
            + "';; *) echo '| CUDA Version: 12.4 |';; esac\n");
    Files.setPosixFilePermissions(smi, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path root = tmp.resolve("driver");
    Path dev = Files.createDirectories(root.resolve("dev"));
    for (String[] n :
        new String[][] {
          {"nvidiactl", "195", "255"},
          {"nvidia-uvm", "510", "0"},
          {"nvidia0", "195", "0"},
          {"nvidia1", "195", "1"}
        }) {
      Process m =
          new ProcessBuilder("mknod", dev.resolve(n[0]).toString(), "c", n[1], n[2])
              .redirectErrorStream(true)
              .start();
      m.waitFor(10, TimeUnit.SECONDS);
      Assumptions.assumeTrue(m.exitValue() == 0, "fake device nodes need root (mknod)");
    }
    Path lib = Files.createDirectories(root.resolve("usr/lib/x86_64-linux-gnu"));
    Files.writeString(lib.resolve("libcuda.so.550.90.07"), "x");
    Files.writeString(lib.resolve("libnvidia-ml.so.550.90.07"), "x");

    List<String> cmd = new java.util.ArrayList<>(SkiffProcess.command());
    int main = cmd.indexOf(SkiffCli.class.getName());
    cmd.set(main, DeviceCheck.class.getName());
    cmd.addAll(List.of("--work", tmp.resolve("work").toString(), "--timeout", "60"));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment()
        .putAll(
            Map.of(
                "SKIFF_NVIDIA_SMI", smi.toString(),
                "SKIFF_NVML", tmp.resolve("none.so").toString(),
                "SKIFF_GPU_ROOT", root.toString()));
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes());
    assertTrue(p.waitFor(240, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), out);
    String summary = out.substring(out.indexOf("== summary"));
    assertTrue(
        summary.contains("inventory:                     2 GPUs [H200, L4] through nvidia-smi"),
        summary);
    assertTrue(summary.lines().anyMatch(l -> l.startsWith("machine:")), summary);
    // Whatever the reason a sandbox could not start, the check says it in runsc's words.
    assertTrue(
        summary.contains("sandbox, H200 request:         failed")
            && summary.contains("sandbox, any request:          failed"),
        summary);
    assertTrue(summary.contains("/dev/nvidiactl") || summary.contains("nvproxy"), summary);
    assertTrue(summary.contains("fallback (host, no sandbox):"), summary);
  }
}
