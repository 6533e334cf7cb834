package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.Environment;
import dev.skiff.gpu.testing.FakeGpuHost;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
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
    FakeGpuHost fake =
        FakeGpuHost.create(
            tmp.resolve("gpu-host"),
            "550.90.07",
            List.of(
                new FakeGpuHost.Card(
                    "NVIDIA H200", "GPU-aaaaaaaa-0000-0000-0000-000000000000", 143771, 3, 0),
                new FakeGpuHost.Card(
                    "NVIDIA L4", "GPU-cccccccc-0000-0000-0000-000000000000", 23034, 0, 0)));

    List<String> cmd = new java.util.ArrayList<>(SkiffProcess.command());
    int main = cmd.indexOf(SkiffCli.class.getName());
    cmd.set(main, DeviceCheck.class.getName());
    cmd.addAll(List.of("--work", tmp.resolve("work").toString(), "--timeout", "60"));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().putAll(fake.env());
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
