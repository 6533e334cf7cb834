package dev.skiff.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GPUs claimed by one sandbox are not given to another, in this process or another, until the claim
 * is closed or its process dies (kill -9: the kernel drops the lock, nothing leaks).
 */
class GpuClaimsTest {
  @TempDir Path tmp;

  static final List<Gpu> GPUS =
      List.of(GpuSandboxTest.gpu(0, 0), GpuSandboxTest.gpu(1, 1), GpuSandboxTest.gpu(2, 2));

  /** Claims GPU {@code args[1]} under {@code args[0]}, says so, and holds it until killed. */
  public static final class Holder {
    public static void main(String[] args) throws Exception {
      Optional<GpuClaims.Claim> c =
          new GpuClaims(Path.of(args[0])).claim(List.of(GPUS.get(Integer.parseInt(args[1]))), 1);
      System.out.println(c.isPresent() ? "held" : "taken");
      System.out.flush();
      Thread.sleep(600_000);
    }
  }

  private static long openFiles() throws java.io.IOException {
    try (var fds = java.nio.file.Files.list(Path.of("/proc/self/fd"))) {
      return fds.count();
    }
  }

  @Test
  void aThousandClaimsLeaveNoDescriptorOpen() throws Exception {
    GpuClaims claims = new GpuClaims(tmp);
    long before = openFiles();
    for (int i = 0; i < 1000; i++) {
      try (GpuClaims.Claim c = claims.claim(GPUS, 2).orElseThrow()) {
        assertTrue(claims.inUse(c.gpus().get(0)));
        assertTrue(claims.claim(GPUS, 2).isEmpty(), "only one left");
      }
    }
    assertTrue(openFiles() <= before + 2, "open files " + before + " -> " + openFiles());
    assertFalse(claims.inUse(GPUS.get(0)));
  }

  @Test
  void aClaimIsExclusiveUntilClosed() throws Exception {
    GpuClaims claims = new GpuClaims(tmp);
    GpuClaims.Claim two = claims.claim(GPUS, 2).orElseThrow();
    assertEquals(List.of(GPUS.get(0), GPUS.get(1)), two.gpus());
    assertEquals(List.of(GPUS.get(2)), claims.claim(GPUS, 1).orElseThrow().gpus());
    assertTrue(claims.claim(GPUS, 1).isEmpty(), "all three are taken");
    assertTrue(claims.inUse(GPUS.get(0)));
    two.close();
    assertFalse(claims.inUse(GPUS.get(0)));
    assertEquals(2, claims.claim(GPUS, 2).orElseThrow().gpus().size());
  }

  private Process holder(int gpu) throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    return new ProcessBuilder(
            java,
            "-cp",
            System.getProperty("java.class.path"),
            Holder.class.getName(),
            tmp.toString(),
            Integer.toString(gpu))
        .redirectErrorStream(true)
        .start();
  }

  private static String firstLine(Process p) throws Exception {
    return new BufferedReader(new InputStreamReader(p.getInputStream())).readLine();
  }

  @Test
  void askingWhetherAGpuIsInUseNeverDropsThisProcesssOwnClaim() throws Exception {
    GpuClaims claims = new GpuClaims(tmp);
    try (GpuClaims.Claim mine = claims.claim(List.of(GPUS.get(0)), 1).orElseThrow()) {
      assertTrue(claims.inUse(GPUS.get(0)));
      assertTrue(claims.claim(List.of(GPUS.get(0)), 1).isEmpty());
      Process other = holder(0);
      try {
        assertEquals("taken", firstLine(other), "another process still finds it claimed");
      } finally {
        other.destroyForcibly();
      }
    }
  }

  @Test
  void anotherProcessesClaimHoldsUntilItIsKilled() throws Exception {
    Process holder = holder(1);
    try {
      assertEquals("held", firstLine(holder));
      GpuClaims claims = new GpuClaims(tmp);
      assertTrue(claims.inUse(GPUS.get(1)));
      GpuClaims.Claim got = claims.claim(GPUS, 2).orElseThrow();
      assertEquals(List.of(GPUS.get(0), GPUS.get(2)), got.gpus(), "GPU 1 is skipped");
      got.close();

      holder.destroyForcibly(); // kill -9: no chance to release anything itself
      assertTrue(holder.waitFor(30, TimeUnit.SECONDS));
      assertFalse(claims.inUse(GPUS.get(1)), "the kernel released the dead process's claim");
    } finally {
      holder.destroyForcibly();
    }
  }
}
