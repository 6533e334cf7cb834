package dev.skiff.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.runtime.testing.Soak;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A short soak (the long one is bench/SoakBench): warm sandboxes made, used and closed over several
 * images in one runtime hold no more mounts, open files, threads or state directories at the end
 * than once every image was mounted.
 */
class SoakTest {
  @TempDir Path tmp;

  @Test
  @Timeout(900)
  void sixtyCyclesOverSixImagesLeaveNothingGrowing() throws Exception {
    Environment.requireRunsc();
    Path home = tmp.resolve("home");
    try (ImageStore store = ImageStore.open(home)) {
      List<ImageSpec> images = Soak.images(store, tmp, 6);
      List<Soak.Sample> samples;
      try (SandboxRuntime rt = SandboxRuntime.open(store, SandboxRuntime.Config.defaults())) {
        samples = Soak.run(rt, home, images, 60, 12);
        assertEquals(new SandboxRuntime.Stats(0, 6), rt.stats());
      }
      Soak.Sample warm = samples.get(1); // every image mounted by now
      Soak.Sample last = samples.get(samples.size() - 1);
      String all = samples.toString();
      assertEquals(6, warm.fuseMounts(), all);
      assertEquals(6, last.fuseMounts(), "one mount per image, however many sandboxes: " + all);
      assertEquals(0, last.stateDirs(), "every sandbox's state removed: " + all);
      // runsc's deletes take seconds each and run in the background, so how many are under way
      // moves with the machine's load (8 to 14 on a busy 2-core host); what must not happen is a
      // backlog that grows with the cycles (one a cycle would be 50 more by the end)
      int plateau =
          samples.subList(1, samples.size() / 2 + 1).stream()
              .mapToInt(Soak.Sample::runscStates)
              .max()
              .orElseThrow();
      assertTrue(
          last.runscStates() <= plateau + 6, "runsc's deletes (in the background) keep up: " + all);
      assertTrue(last.fds() <= warm.fds() + 8, "open files grew: " + all);
      assertTrue(last.threads() <= warm.threads() + 8, "threads grew: " + all);
      Soak.Sample closed = Soak.sample(60, home, 0);
      assertEquals(0, closed.fuseMounts(), "closing the runtime unmounts all");
      for (int i = 0; i < 100 && closed.runscStates() > 0; i++) {
        Thread.sleep(100);
        closed = Soak.sample(60, home, 0);
      }
      assertEquals(0, closed.runscStates(), "runsc's deletes finish on their own");
      System.out.println("soak: " + all);
    }
  }
}
