package dev.skiff.runtime.testing;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.fuse.MountTable;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.runtime.ExitStatus;
import dev.skiff.runtime.Sandbox;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxProcess;
import dev.skiff.runtime.SandboxRuntime;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * A long life in a short time: warm sandboxes created, used and closed again and again over many
 * images in one runtime, as a worker does for days, with what the process holds sampled as it goes
 * (resident memory, threads, open files, FUSE mounts, sandbox state directories). Shared by the
 * soak test and the soak benchmark.
 */
public final class Soak {
  private Soak() {}

  /** What the process held after {@code cycle} cycles. */
  public record Sample(
      int cycle,
      long rssKb,
      long heapKb,
      int threads,
      int fds,
      int fuseMounts,
      int stateDirs,
      int runscStates,
      double msPerCycle) {}

  /**
   * Imports {@code n} images that differ in one file each (so each is an image of its own, with its
   * own mount) from a root filesystem of the host's tools; returns their specs.
   */
  public static List<ImageSpec> images(ImageStore store, Path work, int n) throws Exception {
    Path rootfs = HostRootfs.tools().build(work.resolve("soak-rootfs"));
    List<ImageSpec> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      Files.writeString(rootfs.resolve("etc/soak-image"), "image " + i + "\n");
      ImageRef ref = ImageRef.parse("soak" + i + ":1");
      store.importImage(rootfs.toString(), ref, ImportProgress.NONE);
      out.add(ImageSpec.parse(ref.toString()));
    }
    return out;
  }

  /**
   * Runs {@code cycles} cycles (create a warm sandbox on the next image, exec one process in it,
   * wait for it, close the sandbox), sampling before the first and after every {@code every}.
   */
  public static List<Sample> run(
      SandboxRuntime rt, Path home, List<ImageSpec> images, int cycles, int every)
      throws Exception {
    List<Sample> samples = new ArrayList<>();
    samples.add(sample(0, home, 0));
    long t0 = System.nanoTime();
    for (int c = 1; c <= cycles; c++) {
      try (Sandbox sb = rt.create(images.get(c % images.size()), SandboxOptions.defaults())) {
        SandboxProcess p = sb.exec(List.of("/bin/cat", "/etc/soak-image"), Sandbox.Exec.defaults());
        Thread[] pumps = p.pipeTo(OutputStream.nullOutputStream(), OutputStream.nullOutputStream());
        ExitStatus s = p.waitFor();
        for (Thread t : pumps) {
          t.join();
        }
        if (!s.success()) {
          throw new IllegalStateException("cycle " + c + ": " + s);
        }
      }
      if (c % every == 0) {
        samples.add(sample(c, home, (System.nanoTime() - t0) / 1e6 / every));
        t0 = System.nanoTime();
      }
    }
    return samples;
  }

  /** What this process holds now (the heap measured after a full collection). */
  public static Sample sample(int cycle, Path home, double msPerCycle) throws IOException {
    System.gc();
    long heap =
        java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed()
            / 1024;
    long rss = 0;
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmRSS:")) {
        rss = Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    return new Sample(
        cycle,
        rss,
        heap,
        count(Path.of("/proc/self/task")),
        count(Path.of("/proc/self/fd")),
        (int)
            MountTable.read().stream()
                .filter(m -> m.fsType().startsWith("fuse") && m.mountpoint().startsWith(home))
                .count(),
        count(home.resolve("run").resolve("sandboxes")),
        runscStates(home.resolve("run").resolve("runsc")),
        msPerCycle);
  }

  /** Sandboxes runsc still keeps state for under its root. */
  private static int runscStates(Path root) throws IOException {
    if (!Files.isDirectory(root)) {
      return 0;
    }
    try (Stream<Path> s = Files.list(root)) {
      return (int) s.filter(p -> p.getFileName().toString().contains("sb-")).count();
    }
  }

  private static int count(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    try (Stream<Path> s = Files.list(dir)) {
      return (int) s.count();
    }
  }
}
