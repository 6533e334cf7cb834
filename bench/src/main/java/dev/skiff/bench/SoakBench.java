package dev.skiff.bench;

import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.testing.Soak;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;

/**
 * A worker's life compressed: {@code --cycles} warm-sandbox cycles (create, exec one process, wait,
 * close) over {@code --images} images in one runtime, with the process's resident memory, threads,
 * open files, FUSE mounts and sandbox state directories recorded every {@code --every} cycles.
 * After warm-up (every image mounted) they should stay flat. Needs root, FUSE and runsc.
 *
 * <pre>
 * tools/setup && mvn -q -pl bench dependency:build-classpath -Dmdep.outputFile=target/classpath.txt
 * java $(sed -n 's/^skiff.jvm.flags=//p' jvm.properties) -Xmx512m \
 *     -cp bench/target/classes:$(cat bench/target/classpath.txt) \
 *     dev.skiff.bench.SoakBench [--work /var/tmp/skiff-soak] [--cycles 1000] [--images 20] [--every 100]
 * </pre>
 */
public final class SoakBench {
  private SoakBench() {}

  public static void main(String[] args) throws Exception {
    Path work = Path.of("/var/tmp/skiff-soak");
    int cycles = 1000;
    int images = 20;
    int every = 100;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--work" -> work = Path.of(args[++i]);
        case "--cycles" -> cycles = Integer.parseInt(args[++i]);
        case "--images" -> images = Integer.parseInt(args[++i]);
        case "--every" -> every = Integer.parseInt(args[++i]);
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    FsBench.sh("rm -rf " + work + " && mkdir -p " + work);
    Path home = work.resolve("home");
    List<Soak.Sample> samples;
    long t0 = System.nanoTime();
    try (ImageStore store = ImageStore.open(home)) {
      List<ImageSpec> specs = Soak.images(store, work, images);
      try (SandboxRuntime rt =
          SandboxRuntime.open(
              store, SandboxRuntime.Config.defaults().withIdleUnmount(Duration.ofMinutes(30)))) {
        samples = Soak.run(rt, home, specs, cycles, every);
      }
    }
    StringBuilder out = new StringBuilder();
    out.append(
            String.format(
                Locale.ROOT,
                "Date %s; %d cycles (create a warm sandbox, exec `cat` in it, wait, close) over %d"
                    + " images in one runtime, %.0f s in all; sampled every %d cycles.%n%n",
                Instant.now(),
                cycles,
                images,
                (System.nanoTime() - t0) / 1e9,
                every))
        .append(
            "| cycles | heap after GC (MiB) | RSS (MiB) | threads | open files | FUSE mounts | state"
                + " dirs | runsc states | ms per cycle |\n")
        .append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (Soak.Sample s : samples) {
      out.append(
          String.format(
              Locale.ROOT,
              "| %d | %.0f | %.0f | %d | %d | %d | %d | %d | %s |%n",
              s.cycle(),
              s.heapKb() / 1024.0,
              s.rssKb() / 1024.0,
              s.threads(),
              s.fds(),
              s.fuseMounts(),
              s.stateDirs(),
              s.runscStates(),
              s.cycle() == 0 ? "-" : String.format(Locale.ROOT, "%.0f", s.msPerCycle())));
    }
    Files.writeString(work.resolve("soak-report.md"), out);
    System.out.println(out);
  }
}
