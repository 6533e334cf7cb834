package dev.skiff.bench.sdk;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.bench.FsBench;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.testing.HostRootfs;
import dev.skiff.scheduler.LocalPlatform;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.Status;
import dev.skiff.scheduler.runner.JavaRunnerJars;
import dev.skiff.scheduler.runner.Outcome;
import dev.skiff.scheduler.runner.PythonRunner;
import dev.skiff.scheduler.state.LmdbControlState;
import dev.skiff.scheduler.worker.FunctionContainer;
import dev.skiff.scheduler.worker.Worker;
import dev.skiff.sdk.App;
import dev.skiff.sdk.AppRun;
import dev.skiff.sdk.Image;
import dev.skiff.sdk.MapOptions;
import dev.skiff.sdk.SkiffClient;
import dev.skiff.sdk.SkiffFunction;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.stream.IntStream;

/**
 * The Java SDK's figures, each against a baseline measured in the same run: a warm call through the
 * SDK (baseline: the same call through the raw gRPC client), a map of 10,000 inputs (baseline: the
 * raw client's map), the cold start of a Java function from the warm JVM and from its own memory
 * snapshot (baseline: a JVM started in the sandbox), and the edit-and-rerun loop of a program in a
 * JVM of its own (baseline: the same program unchanged). A scheduler and a worker run in this
 * process on loopback; the image is a JVM linked from this JDK.
 *
 * <p>Run: {@code java $FLAGS -cp bench/target/classes:$(cat bench/target/classpath.txt)
 * dev.skiff.bench.sdk.SdkBench [--reps 5] [--only warm,map,bytes,cold,loop] [--sdk-classpath
 * examples/java-function/target/classpath.txt]}
 */
public final class SdkBench {
  private static final String IMAGE = "jvm:1";
  private static final String JVM = "/opt/java/bin/java";

  private SdkBench() {}

  public static void main(String[] args) throws Exception {
    Path work = Path.of("/var/tmp/skiff-sdk-bench");
    int reps = 5;
    int calls = 2000;
    Path sdkClassPath = Path.of("examples/java-function/target/classpath.txt");
    List<String> only = List.of("warm", "map", "bytes", "cold", "loop");
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--work" -> work = Path.of(args[++i]);
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        case "--calls" -> calls = Integer.parseInt(args[++i]);
        case "--sdk-classpath" -> sdkClassPath = Path.of(args[++i]);
        case "--only" -> only = List.of(args[++i].split(","));
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    if (!Files.isRegularFile(sdkClassPath)) {
      throw new IllegalArgumentException(
          sdkClassPath + " is missing: build the examples first (tools/test does)");
    }
    FsBench.sh("rm -rf " + work + " && mkdir -p " + work);
    StringBuilder report = new StringBuilder();
    try (ImageStore store = ImageStore.open(work.resolve("home"))) {
      Path rootfs = HostRootfs.python().jvm("/opt/java").build(work.resolve("rootfs"));
      store.importImage(rootfs.toString(), ImageRef.parse(IMAGE), ImportProgress.NONE);
      ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor();
      try (SandboxRuntime rt = SandboxRuntime.open(store, SandboxRuntime.Config.defaults());
          LmdbControlState state = LmdbControlState.open(work.resolve("state"));
          LocalPlatform platform =
              LocalPlatform.start(
                  store,
                  rt,
                  state,
                  new Worker.Options(
                      "bench",
                      2,
                      8L << 30,
                      List.of(),
                      work.resolve("worker"),
                      "/usr/bin/python3",
                      8));
          SkiffClient client =
              SkiffClient.connect(platform.target(), platform.clientToken(), null);
          ControlClient raw = platform.client()) {
        String target = platform.target();
        String clientToken = platform.clientToken();
        report.append(
            String.format(
                Locale.ROOT,
                "Date %s; %s, %d cores; loopback, scheduler + worker in one process.%n%n",
                Instant.now(),
                System.getProperty("os.arch"),
                Runtime.getRuntime().availableProcessors()));
        Path classes =
            Path.of(
                BenchFunctions.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        App app = App.named("sdkbench").client(client).classPath(classes).output(l -> {});
        Image image = Image.of(IMAGE).jvm(JVM);
        SkiffFunction<Integer, Integer> echo =
            app.function(BenchFunctions::echo).name("echo").image(image).minContainers(1).build();
        SkiffFunction<Integer, Integer> mapped =
            app.function(BenchFunctions::echo).name("mapped").image(image).build();
        SkiffFunction<byte[], byte[]> bytes =
            app.function(BenchFunctions::echoBytes)
                .name("bytes")
                .image(image)
                .minContainers(1)
                .build();
        SkiffFunction<Integer, Integer> cold =
            app.function(BenchFunctions.Warmed::lookup)
                .name("cold")
                .image(image)
                .scaledownWindow(Duration.ofSeconds(1))
                .build();
        SkiffFunction<Integer, Integer> snap =
            app.function(BenchFunctions.Warmed::lookup)
                .name("snap")
                .image(image)
                .memorySnapshot(true)
                .scaledownWindow(Duration.ofSeconds(1))
                .build();
        try (AppRun run = app.run()) {
          if (only.contains("warm")) {
            warm(echo, raw, calls, report);
          }
          if (only.contains("map")) {
            map(mapped, raw, reps, report);
          }
          if (only.contains("bytes")) {
            bytes(bytes, raw, report);
          }
          if (only.contains("cold")) {
            cold(cold, snap, raw, rt, work, timers, reps, report);
          }
        }
        if (only.contains("loop")) {
          loop(target, clientToken, sdkClassPath, work, reps, report);
        }
      } finally {
        timers.shutdownNow();
      }
    }
    System.out.print(report);
  }

  private static void log(String s) {
    System.err.println("sdk-bench: " + s);
  }

  private static double pct(double[] sorted, double p) {
    return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p * sorted.length) - 1)];
  }

  private static String row(String what, double[] sorted) {
    return String.format(
        Locale.ROOT,
        "| %s | %d | %.3f | %.3f | %.3f |%n",
        what,
        sorted.length,
        pct(sorted, 0.5),
        pct(sorted, 0.9),
        pct(sorted, 0.99));
  }

  private static void warm(
      SkiffFunction<Integer, Integer> echo, ControlClient raw, int calls, StringBuilder report) {
    log("warm call round trip: " + calls + " calls, each way");
    Input in = ControlClient.input("[1]", "");
    for (int i = 0; i < 1000; i++) {
      echo.remote(i);
      raw.call(echo.id(), in, null);
    }
    double[] sdk = new double[calls];
    double[] base = new double[calls];
    for (int i = 0; i < calls; i++) { // interleaved, so drift hits both alike
      long t0 = System.nanoTime();
      echo.remote(i);
      sdk[i] = (System.nanoTime() - t0) / 1e6;
      t0 = System.nanoTime();
      if (raw.call(echo.id(), in, null).getStatus() != Status.SUCCESS) {
        throw new IllegalStateException("raw call failed");
      }
      base[i] = (System.nanoTime() - t0) / 1e6;
    }
    Arrays.sort(sdk);
    Arrays.sort(base);
    report
        .append("### Warm Java call round trip through the SDK\n\n")
        .append(
            "| path | calls | p50 (ms) | p90 (ms) | p99 (ms) |\n| --- | ---: | ---: | ---: | ---: |\n")
        .append(row("SkiffFunction.remote -> Java runner in a warm container", sdk))
        .append(row("baseline: raw gRPC client, same function, JSON by hand", base))
        .append(
            String.format(
                Locale.ROOT,
                "%nThe SDK adds %.3f ms at the median (ratio %.2f). Target p50 <= 2 ms.%n%n",
                pct(sdk, 0.5) - pct(base, 0.5),
                pct(sdk, 0.5) / pct(base, 0.5)));
  }

  /**
   * A {@code byte[]} sent and returned whole, at a few sizes up to the 2 MiB a call carries inline:
   * the SDK's remote (raw bytes both ways) against the raw client sending the same bytes as base64
   * in JSON made once beforehand (what the SDK sent before raw bytes) and never reading the result.
   */
  private static void bytes(
      SkiffFunction<byte[], byte[]> fn, ControlClient raw, StringBuilder report) throws Exception {
    report
        .append("### byte[] round trip (input and result the same size)\n\n")
        .append(
            "| size | calls | SDK p50 (ms) | raw p50 (ms) | SDK MB/s each way | ratio |\n"
                + "| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int size : new int[] {1 << 10, 64 << 10, 1 << 20}) {
      byte[] data = new byte[size];
      new java.util.SplittableRandom(size).nextBytes(data);
      Input in =
          ControlClient.input(
              "[\"" + java.util.Base64.getEncoder().encodeToString(data) + "\"]", "");
      int calls = Math.max(20, Math.min(500, (int) ((64L << 20) / size)));
      log("byte[] of " + size + " bytes: " + calls + " calls each way");
      for (int i = 0; i < calls / 4 + 10; i++) {
        fn.remote(data);
        raw.call(fn.id(), in, null);
      }
      double[] sdk = new double[calls];
      double[] base = new double[calls];
      for (int i = 0; i < calls; i++) {
        long t0 = System.nanoTime();
        byte[] back = fn.remote(data);
        sdk[i] = (System.nanoTime() - t0) / 1e6;
        if (back.length != size) {
          throw new IllegalStateException("got " + back.length + " bytes back, not " + size);
        }
        t0 = System.nanoTime();
        if (raw.call(fn.id(), in, null).getStatus() != Status.SUCCESS) {
          throw new IllegalStateException("raw call failed");
        }
        base[i] = (System.nanoTime() - t0) / 1e6;
      }
      Arrays.sort(sdk);
      Arrays.sort(base);
      double p50 = pct(sdk, 0.5);
      report.append(
          String.format(
              Locale.ROOT,
              "| %,d | %d | %.3f | %.3f | %.1f | %.2f |%n",
              size,
              calls,
              p50,
              pct(base, 0.5),
              size / 1e6 / (p50 / 1e3),
              p50 / pct(base, 0.5)));
    }
    report.append("\n");
  }

  private static void map(
      SkiffFunction<Integer, Integer> fn, ControlClient raw, int reps, StringBuilder report)
      throws Exception {
    int n = 10_000;
    List<Integer> inputs = IntStream.range(0, n).boxed().toList();
    fn.map(inputs, MapOptions.defaults().quiet()).toList(); // containers up, JIT warm
    double[] sdk = new double[reps];
    double[] base = new double[reps];
    for (int r = 0; r < reps; r++) {
      log("map of " + n + ": rep " + (r + 1));
      long t0 = System.nanoTime();
      List<Integer> out = fn.map(inputs, MapOptions.defaults().quiet()).toList();
      sdk[r] = n / ((System.nanoTime() - t0) / 1e9);
      if (!out.equals(inputs)) {
        throw new IllegalStateException("the map's results are wrong");
      }
      t0 = System.nanoTime();
      raw.map(
          fn.id(),
          IntStream.range(0, n).mapToObj(i -> ControlClient.input("[" + i + "]", "")).iterator(),
          10_000,
          (i, res) -> {
            if (res.getStatus() != Status.SUCCESS) {
              throw new IllegalStateException("raw map call failed: " + res);
            }
          });
      base[r] = n / ((System.nanoTime() - t0) / 1e9);
    }
    Arrays.sort(sdk);
    Arrays.sort(base);
    report
        .append("### SDK map of 10,000 inputs (trivial Java handler, warm containers)\n\n")
        .append(
            String.format(
                Locale.ROOT,
                "| path | reps | median (inputs/s) | slowest rep (inputs/s) |%n| --- | ---: | ---: | ---: |%n"
                    + "| SkiffFunction.map, ordered Stream | %d | %.0f | %.0f |%n"
                    + "| baseline: raw gRPC client map | %d | %.0f | %.0f |%n%n"
                    + "Ratio SDK/raw %.2f. Target >= 5,000 inputs/s.%n%n",
                reps,
                sdk[reps / 2],
                sdk[0],
                reps,
                base[reps / 2],
                base[0],
                sdk[reps / 2] / base[reps / 2]));
  }

  private static void awaitNoContainers(ControlClient raw, String fn) throws InterruptedException {
    for (int i = 0; i < 600; i++) {
      if (raw.containers().stream().noneMatch(c -> c.getFunctionId().equals(fn))) {
        return;
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException(fn + " did not scale to zero");
  }

  private static void cold(
      SkiffFunction<Integer, Integer> fromWarmJvm,
      SkiffFunction<Integer, Integer> fromSnapshot,
      ControlClient raw,
      SandboxRuntime rt,
      Path work,
      ScheduledExecutorService timers,
      int reps,
      StringBuilder report)
      throws Exception {
    // first calls take the snapshots (the warm JVM's, the function's)
    fromWarmJvm.remote(1);
    fromSnapshot.remote(1);
    double[] warmJvm = new double[reps];
    double[] snapshot = new double[reps];
    double[] fresh = new double[reps];
    Path runner = PythonRunner.install(work.resolve("fresh-runner"));
    JavaRunnerJars.install(runner);
    Path code = Files.createDirectories(work.resolve("fresh-code"));
    Files.write(
        code.resolve("000.jar"),
        dev.skiff.scheduler.CodeBundle.pack(
            Path.of(
                BenchFunctions.class.getProtectionDomain().getCodeSource().getLocation().toURI())));
    FunctionContainer.Spec spec =
        new FunctionContainer.Spec(
            ImageSpec.parse(IMAGE),
            "java",
            JVM,
            BenchFunctions.Warmed.class.getName() + "#lookup",
            code,
            1,
            SandboxOptions.defaults());
    for (int r = 0; r < reps; r++) {
      log("cold Java call: rep " + (r + 1));
      awaitNoContainers(raw, fromWarmJvm.id());
      long t0 = System.nanoTime();
      fromWarmJvm.remote(r);
      warmJvm[r] = (System.nanoTime() - t0) / 1e9;
      awaitNoContainers(raw, fromSnapshot.id());
      t0 = System.nanoTime();
      fromSnapshot.remote(r);
      snapshot[r] = (System.nanoTime() - t0) / 1e9;
      t0 = System.nanoTime();
      try (FunctionContainer c =
          FunctionContainer.start(rt, spec, runner, timers, FunctionContainer.LogSink.NONE)) {
        Outcome o = c.call("fresh-" + r, "[" + r + "]", "", Duration.ofSeconds(60)).get();
        if (!(o instanceof Outcome.Success)) {
          throw new IllegalStateException("fresh call failed: " + o);
        }
        fresh[r] = (System.nanoTime() - t0) / 1e9;
      }
    }
    Arrays.sort(warmJvm);
    Arrays.sort(snapshot);
    Arrays.sort(fresh);
    report
        .append("### Cold start of a Java function (an @Enter that loads 200,000 strings)\n\n")
        .append(
            String.format(
                Locale.ROOT,
                "| start | reps | median (s) | slowest (s) |%n| --- | ---: | ---: | ---: |%n"
                    + "| call -> result, from the function's memory snapshot (after @Enter) | %d | %.3f | %.3f |%n"
                    + "| call -> result, from the host's warm JVM (then load, @Enter) | %d | %.3f | %.3f |%n"
                    + "| baseline: a fresh JVM in the sandbox, load, @Enter, call (no scheduler) | %d | %.3f | %.3f |%n%n"
                    + "Ratios to the baseline: snapshot %.2f, warm JVM %.2f. Target (snapshot) <= 0.3 s.%n%n",
                reps,
                snapshot[reps / 2],
                snapshot[reps - 1],
                reps,
                warmJvm[reps / 2],
                warmJvm[reps - 1],
                reps,
                fresh[reps / 2],
                fresh[reps - 1],
                snapshot[reps / 2] / fresh[reps / 2],
                warmJvm[reps / 2] / fresh[reps / 2]));
  }

  private static final String LOOP =
      """
      import dev.skiff.sdk.*;

      public final class Loop {
        public static String apply(String s) {
          return "VERSION " + s;
        }

        public static void main(String[] args) {
          long t0 = System.nanoTime();
          long jvm = System.currentTimeMillis() - Long.parseLong(System.getenv("SKIFF_LAUNCHED_AT_MS"));
          App app = App.named("loop");
          SkiffFunction<String, String> f =
              app.function(Loop::apply).image(Image.of("%s").jvm("%s")).build();
          try (AppRun run = app.run()) {
            String out = f.remote("x");
            System.out.println(
                "RESULT " + out.replace(' ', '_') + " " + (System.nanoTime() - t0) / 1_000_000 + " "
                    + jvm + " " + run.deployment().millis() + " " + run.deployment().uploadedBytes());
          }
        }
      }
      """;

  /** One run of the loop program: main -> result ms, JVM start ms, deploy ms, process wall ms. */
  private record LoopRun(
      String result, long toResult, long jvm, long deploy, long uploaded, long wall) {}

  private static void loop(
      String target, String token, Path sdkClassPath, Path work, int reps, StringBuilder report)
      throws Exception {
    Path src = Files.createDirectories(work.resolve("loop/src"));
    Path classes = Files.createDirectories(work.resolve("loop/classes"));
    String cp = Files.readString(sdkClassPath).trim();
    String javaHome = System.getProperty("java.home");
    List<LoopRun> edited = new ArrayList<>();
    List<LoopRun> unchanged = new ArrayList<>();
    for (int r = -1; r < reps; r++) {
      String version = "v" + (r + 2);
      Files.writeString(
          src.resolve("Loop.java"),
          String.format(LOOP, IMAGE, JVM).replace("\"VERSION \"", "\"" + version + " \""));
      FsBench.sh(
          javaHome + "/bin/javac -d " + classes + " -cp " + cp + " " + src.resolve("Loop.java"));
      LoopRun e = loopOnce(javaHome, classes, cp, target, token);
      if (!e.result().startsWith(version)) {
        throw new IllegalStateException("the edit did not run remotely: " + e);
      }
      LoopRun u = loopOnce(javaHome, classes, cp, target, token);
      log("edit-and-rerun " + r + ": " + e + "; unchanged: " + u);
      if (r >= 0) { // the first round ships the SDK's own jars once
        edited.add(e);
        unchanged.add(u);
      }
    }
    double[] jvmStart = new double[reps];
    double[] hello = new double[reps];
    Files.writeString(
        src.resolve("Hello.java"), "public class Hello { public static void main(String[] a) {} }");
    FsBench.sh(javaHome + "/bin/javac -d " + classes + " " + src.resolve("Hello.java"));
    for (int r = 0; r < reps; r++) {
      long t0 = System.nanoTime();
      FsBench.sh(javaHome + "/bin/java -cp " + classes + " Hello");
      hello[r] = (System.nanoTime() - t0) / 1e6;
      jvmStart[r] = edited.get(r).jvm();
    }
    Arrays.sort(hello);
    Arrays.sort(jvmStart);
    report
        .append("### Edit and rerun: a program's main, in a fresh JVM, against a warm platform\n\n")
        .append(
            "Each round edits the handler's source (its result changes), compiles it (not timed),"
                + " and runs main: ship the class path (only the edited classes are new), deploy,"
                + " call, print the result (checked to be the edited one); then runs it unchanged.\n\n")
        .append(
            "| run | reps | main -> result, median (ms) | slowest (ms) | of it deploy, median (ms) | process wall, median (ms) |\n")
        .append("| --- | ---: | ---: | ---: | ---: | ---: |\n")
        .append(loopRow("edited, then run", edited))
        .append(loopRow("baseline: run again unchanged", unchanged))
        .append(
            String.format(
                Locale.ROOT,
                "%nThe JVM's own start before main: median %.0f ms (a main that does nothing, whole"
                    + " process: %.0f ms). Target main -> result <= 1.5 s.%n%n",
                jvmStart[reps / 2],
                hello[reps / 2]));
  }

  private static String loopRow(String what, List<LoopRun> runs) {
    long[] toResult = runs.stream().mapToLong(LoopRun::toResult).sorted().toArray();
    long[] deploy = runs.stream().mapToLong(LoopRun::deploy).sorted().toArray();
    long[] wall = runs.stream().mapToLong(LoopRun::wall).sorted().toArray();
    int m = runs.size() / 2;
    return String.format(
        Locale.ROOT,
        "| %s | %d | %d | %d | %d | %d |%n",
        what,
        runs.size(),
        toResult[m],
        toResult[toResult.length - 1],
        deploy[m],
        wall[m]);
  }

  private static LoopRun loopOnce(
      String javaHome, Path classes, String cp, String target, String token)
      throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of(javaHome + "/bin/java"));
    cmd.addAll(
        List.of(
            "--enable-native-access=ALL-UNNAMED",
            "--sun-misc-unsafe-memory-access=allow",
            "-cp",
            classes + ":" + cp,
            "Loop"));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD);
    pb.environment().put("SKIFF_SCHEDULER", target);
    pb.environment().put("SKIFF_TOKEN", token);
    long launched = System.currentTimeMillis();
    pb.environment().put("SKIFF_LAUNCHED_AT_MS", Long.toString(launched));
    long t0 = System.nanoTime();
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IllegalStateException("the loop program failed: " + out);
    }
    long wall = (System.nanoTime() - t0) / 1_000_000;
    String line =
        out.lines()
            .filter(l -> l.startsWith("RESULT "))
            .findFirst()
            .orElseThrow(
                () -> new IllegalStateException("no result from the loop program: " + out));
    String[] f = line.split(" ");
    return new LoopRun(
        f[1],
        Long.parseLong(f[2]),
        Long.parseLong(f[3]),
        Long.parseLong(f[4]),
        Long.parseLong(f[5]),
        wall);
  }
}
