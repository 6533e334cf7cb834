package dev.skiff.bench;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.testing.HostRootfs;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.control.SchedulerServer;
import dev.skiff.scheduler.control.Tokens;
import dev.skiff.scheduler.proto.Autoscaling;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.Status;
import dev.skiff.scheduler.runner.Outcome;
import dev.skiff.scheduler.runner.PythonRunner;
import dev.skiff.scheduler.state.LmdbControlState;
import dev.skiff.scheduler.worker.FunctionContainer;
import dev.skiff.scheduler.worker.Worker;
import io.grpc.ManagedChannel;
import java.net.InetSocketAddress;
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
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;

/**
 * The control plane's figures, on loopback in one process as {@code skiff serve} runs it: a
 * scheduler on embedded state, one worker on a resident gVisor runtime, a warm gRPC client, and a
 * trivial Python handler on an image of the host's Python.
 *
 * <ul>
 *   <li><b>warm call</b>: call and wait, one at a time, on a warm container; baseline in the same
 *       run: the same call straight to a warm container's runner, with no scheduler or gRPC.
 *   <li><b>map</b>: 10,000 inputs through the autoscaler's containers, after a warm-up map.
 *   <li><b>fan-out</b>: 200 inputs that each sleep 1 s, at most 20 containers, from none; the floor
 *       is 10 s (200 / 20 x 1 s).
 *   <li><b>cold call from a memory snapshot</b>: from zero containers, a function deployed with
 *       {@code --snapshot}; baseline in the same run: the same cold call without the snapshot.
 * </ul>
 *
 * <pre>
 * tools/setup && mvn -q -pl bench dependency:build-classpath -Dmdep.outputFile=target/classpath.txt
 * java $(sed -n 's/^skiff.jvm.flags=//p' jvm.properties) \
 *     -cp bench/target/classes:$(cat bench/target/classpath.txt) \
 *     dev.skiff.bench.PlatformBench [--work /var/tmp/skiff-platform-bench] [--calls 2000] [--reps 5] \
 *     [--only warm,map,fanout,cold] [--map-max N]
 * </pre>
 */
public final class PlatformBench {
  private PlatformBench() {}

  private static final String HANDLERS =
      """
      import time
      def echo(x):
          return x
      def nap(seconds):
          time.sleep(seconds)
          return seconds
      def stdlib(x):
          import json, email.parser, http.client, decimal, argparse
          return x
      """;

  public static void main(String[] args) throws Exception {
    Path work = Path.of("/var/tmp/skiff-platform-bench");
    int calls = 2000;
    int reps = 5;
    int mapMax = 0;
    int parallelStarts = 8;
    String only = "warm,map,fanout,cold";
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--work" -> work = Path.of(args[++i]);
        case "--calls" -> calls = Integer.parseInt(args[++i]);
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        case "--map-max" -> mapMax = Integer.parseInt(args[++i]);
        case "--parallel-starts" -> parallelStarts = Integer.parseInt(args[++i]);
        case "--only" -> only = args[++i];
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    FsBench.sh("rm -rf " + work + " && mkdir -p " + work);
    Path home = work.resolve("home");
    Path code = Files.createDirectories(work.resolve("code"));
    Files.writeString(code.resolve("handlers.py"), HANDLERS);
    StringBuilder report = new StringBuilder();
    try (ImageStore store = ImageStore.open(home)) {
      Path rootfs =
          HostRootfs.tools()
              .binaries("/usr/bin/python3")
              .tree("/usr/lib/python3.11")
              .build(work.resolve("rootfs"));
      store.importImage(rootfs.toString(), ImageRef.parse("py:1"), ImportProgress.NONE);
      String clientToken = Tokens.generate();
      String workerToken = Tokens.generate();
      ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor();
      try (SandboxRuntime rt = SandboxRuntime.open(store, SandboxRuntime.Config.defaults());
          LmdbControlState state = LmdbControlState.open(work.resolve("state"));
          SchedulerServer server =
              SchedulerServer.start(
                  state,
                  new SchedulerServer.Options(
                      new InetSocketAddress("127.0.0.1", 0),
                      clientToken,
                      workerToken,
                      null,
                      null))) {
        String target = "127.0.0.1:" + server.port();
        ManagedChannel workerChannel = ControlClient.channel(target, null);
        try (Worker worker =
                Worker.start(
                    store,
                    rt,
                    workerChannel,
                    workerToken,
                    new Worker.Options(
                        "bench",
                        2,
                        8L << 30,
                        List.of(),
                        work.resolve("worker"),
                        "/usr/bin/python3",
                        parallelStarts));
            ControlClient client = ControlClient.connect(target, clientToken, null)) {
          worker.attached().get(30, TimeUnit.SECONDS);
          report.append(
              String.format(
                  Locale.ROOT,
                  "Date %s; %s, %d cores; loopback, one process (scheduler + worker +"
                      + " client).%n%n",
                  Instant.now(),
                  System.getProperty("os.arch"),
                  Runtime.getRuntime().availableProcessors()));
          List<String> parts = List.of(only.split(","));
          if (parts.contains("warm")) {
            warmCall(client, rt, code, work, calls, timers, report);
          }
          if (parts.contains("map")) {
            map(client, code, reps, mapMax, report);
          }
          if (parts.contains("fanout")) {
            fanOut(client, code, report);
          }
          if (parts.contains("cold")) {
            coldSnapshot(client, code, reps, report);
          }
        } finally {
          workerChannel.shutdownNow();
          timers.shutdownNow();
        }
      }
    }
    System.out.print(report);
  }

  private static FunctionSpec.Builder fn(String name, String handler) {
    return FunctionSpec.newBuilder()
        .setApp("bench")
        .setName(name)
        .setImage("py:1")
        .setLanguage("python")
        .setHandler(handler);
  }

  private static void log(String s) {
    System.err.println("platform-bench: " + s);
  }

  private static double pct(double[] sorted, double p) {
    return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p * sorted.length) - 1)];
  }

  private static void warmCall(
      ControlClient client,
      SandboxRuntime rt,
      Path code,
      Path work,
      int calls,
      ScheduledExecutorService timers,
      StringBuilder report)
      throws Exception {
    log("warm call round trip: " + calls + " calls");
    client.deploy(
        fn("echo", "handlers:echo")
            .setAutoscaling(Autoscaling.newBuilder().setMinContainers(1).setMaxContainers(1))
            .build(),
        code);
    Input in = ControlClient.input("[1]", "");
    for (int i = 0; i < 500; i++) {
      Result r = client.call("bench/echo", in, null);
      if (r.getStatus() != Status.SUCCESS) {
        throw new IllegalStateException("warm-up call failed: " + r);
      }
    }
    double[] platform = new double[calls];
    for (int i = 0; i < calls; i++) {
      long t0 = System.nanoTime();
      client.call("bench/echo", in, null);
      platform[i] = (System.nanoTime() - t0) / 1e6;
    }
    // baseline: the runner of a warm container, called straight
    double[] direct = new double[calls];
    FunctionContainer.Spec spec =
        new FunctionContainer.Spec(
            ImageSpec.parse("py:1"),
            "/usr/bin/python3",
            "handlers:echo",
            code,
            1,
            SandboxOptions.defaults());
    try (FunctionContainer c =
        FunctionContainer.start(
            rt,
            spec,
            PythonRunner.install(work.resolve("direct-runner")),
            timers,
            FunctionContainer.LogSink.NONE)) {
      for (int i = 0; i < 500 + calls; i++) {
        long t0 = System.nanoTime();
        Outcome o = c.call("c" + i, "[1]", "", Duration.ofSeconds(60)).get();
        if (!(o instanceof Outcome.Success)) {
          throw new IllegalStateException("direct call failed: " + o);
        }
        if (i >= 500) {
          direct[i - 500] = (System.nanoTime() - t0) / 1e6;
        }
      }
    }
    Arrays.sort(platform);
    Arrays.sort(direct);
    report
        .append("### Warm call round trip\n\n")
        .append(
            "| path | calls | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |\n"
                + "| --- | ---: | ---: | ---: | ---: | ---: |\n")
        .append(row("client -> scheduler -> worker -> container -> client", platform))
        .append(row("baseline: worker -> container runner, no scheduler", direct))
        .append(
            String.format(
                Locale.ROOT,
                "%nThe control plane adds %.2f ms at the median (ratio %.2f).%n%n",
                pct(platform, 0.5) - pct(direct, 0.5),
                pct(platform, 0.5) / pct(direct, 0.5)));
  }

  private static String row(String what, double[] sorted) {
    return String.format(
        Locale.ROOT,
        "| %s | %d | %.3f | %.3f | %.3f | %.3f |%n",
        what,
        sorted.length,
        pct(sorted, 0.5),
        pct(sorted, 0.9),
        pct(sorted, 0.99),
        sorted[sorted.length - 1]);
  }

  private static double mapOnce(ControlClient client, String fn, int n) throws Exception {
    AtomicLong bad = new AtomicLong();
    long t0 = System.nanoTime();
    client.map(
        fn,
        IntStream.range(0, n).mapToObj(i -> ControlClient.input("[" + i + "]", "")).iterator(),
        4000,
        (i, r) -> {
          if (r.getStatus() != Status.SUCCESS) {
            bad.incrementAndGet();
          }
        });
    double s = (System.nanoTime() - t0) / 1e9;
    if (bad.get() > 0) {
      throw new IllegalStateException(bad.get() + " map results failed");
    }
    return s;
  }

  private static void map(ControlClient client, Path code, int reps, int max, StringBuilder report)
      throws Exception {
    log("map of 10,000 inputs, " + reps + " times");
    FunctionSpec.Builder f = fn("map", "handlers:echo");
    if (max > 0) {
      f.setAutoscaling(Autoscaling.newBuilder().setMaxContainers(max));
    }
    client.deploy(f.build(), code);
    mapOnce(client, "bench/map", 10_000); // warm-up: containers, JIT
    List<Double> rates = new ArrayList<>();
    for (int r = 0; r < reps; r++) {
      rates.add(10_000 / mapOnce(client, "bench/map", 10_000));
    }
    long containers =
        client.containers().stream().filter(c -> c.getFunctionId().equals("bench/map")).count();
    report
        .append("### map of 10,000 inputs (trivial handler, warm)\n\n")
        .append(
            String.format(
                Locale.ROOT,
                "%s inputs/s, median (min-max) of %d; %d containers at the end.%n%n",
                Samples.spread(rates, "%,.0f"),
                reps,
                containers));
  }

  private static void awaitNoContainers(ControlClient client, String fn)
      throws InterruptedException {
    for (int i = 0; i < 600; i++) {
      if (client.containers().stream().noneMatch(c -> c.getFunctionId().equals(fn))) {
        return;
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException(fn + " did not scale to zero");
  }

  private static void fanOut(ControlClient client, Path code, StringBuilder report)
      throws Exception {
    log("fan-out: 200 inputs of 1 s, at most 20 containers, from zero");
    client.deploy(
        fn("fanout", "handlers:nap")
            .setAutoscaling(
                Autoscaling.newBuilder().setMaxContainers(20).setScaledownWindowMs(2000))
            .build(),
        code);
    awaitNoContainers(client, "bench/fanout");
    long t0 = System.nanoTime();
    client.map(
        "bench/fanout",
        IntStream.range(0, 200).mapToObj(i -> ControlClient.input("[1]", "")).iterator(),
        200,
        (i, r) -> {
          if (r.getStatus() != Status.SUCCESS) {
            throw new IllegalStateException("fan-out call failed: " + r);
          }
        });
    double s = (System.nanoTime() - t0) / 1e9;
    report
        .append("### Fan-out: map of 200 inputs that sleep 1 s, max 20 containers, from zero\n\n")
        .append(
            String.format(
                Locale.ROOT,
                "%.2f s in all; floor 10 s (ratio %.2f); target <= 12 s.%n%n",
                s,
                s / 10));
  }

  private static double coldCall(ControlClient client, String fn) throws Exception {
    awaitNoContainers(client, fn);
    long t0 = System.nanoTime();
    Result r = client.call(fn, ControlClient.input("[1]", ""), null);
    double s = (System.nanoTime() - t0) / 1e9;
    if (r.getStatus() != Status.SUCCESS) {
      throw new IllegalStateException("cold call failed: " + r);
    }
    return s;
  }

  private static void coldSnapshot(ControlClient client, Path code, int reps, StringBuilder report)
      throws Exception {
    log("cold calls, with and without a memory snapshot, " + reps + " each");
    Autoscaling quick = Autoscaling.newBuilder().setScaledownWindowMs(500).build();
    client.deploy(
        fn("snap", "handlers:stdlib").setSnapshot(true).setAutoscaling(quick).build(), code);
    client.deploy(fn("plain", "handlers:stdlib").setAutoscaling(quick).build(), code);
    client.call("bench/snap", ControlClient.input("[1]", ""), null); // takes the snapshot
    client.call("bench/plain", ControlClient.input("[1]", ""), null); // mounts, warms the cache
    List<Double> snap = new ArrayList<>();
    List<Double> plain = new ArrayList<>();
    for (int r = 0; r < reps; r++) {
      snap.add(coldCall(client, "bench/snap"));
      plain.add(coldCall(client, "bench/plain"));
    }
    report
        .append("### Cold call (no container running), image mounted on this host\n\n")
        .append("| start | call to result (s), median (min-max) |\n| --- | ---: |\n")
        .append(
            "| restored from the function's memory snapshot | "
                + Samples.spread(snap, "%.3f")
                + " |\n")
        .append(
            "| baseline: a new container (runner start + import) | "
                + Samples.spread(plain, "%.3f")
                + " |\n")
        .append(
            String.format(
                Locale.ROOT,
                "%nSnapshot / baseline: %.2f; target <= 0.3 s.%n%n",
                Samples.median(snap) / Samples.median(plain)));
  }
}
