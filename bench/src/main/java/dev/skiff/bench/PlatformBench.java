package dev.skiff.bench;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.Remotes;
import dev.skiff.casfs.testing.LatencyProxy;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.runtime.RuntimeEvent;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.testing.HostRootfs;
import dev.skiff.runtime.testing.Soak;
import dev.skiff.scheduler.LocalPlatform;
import dev.skiff.scheduler.client.ControlClient;
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
import dev.skiff.tracer.TraceHook;
import dev.skiff.tracer.TraceOptimizer;
import dev.skiff.tracer.TraceStore;
import io.grpc.ManagedChannel;
import java.net.InetSocketAddress;
import java.net.URI;
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
 *   <li><b>cold call from a bucket</b>: the image never on this host, a resident worker with an
 *       empty home, S3 at 20 ms RTT, trace + optimize; baseline in the same run: the same image
 *       without trace or optimization (see {@link #coldBucket}).
 * </ul>
 *
 * <pre>
 * tools/setup && mvn -q -pl bench dependency:build-classpath -Dmdep.outputFile=target/classpath.txt
 * java $(sed -n 's/^skiff.jvm.flags=//p' jvm.properties) \
 *     -cp bench/target/classes:$(cat bench/target/classpath.txt) \
 *     dev.skiff.bench.PlatformBench [--work /var/tmp/skiff-platform-bench] [--calls 2000] [--reps 5] \
 *     [--only warm,map,fanout,cold,bucket] [--map-max N]
 * </pre>
 */
public final class PlatformBench {
  private PlatformBench() {}

  private static final String HANDLERS =
      """
      import os, time
      def echo(x):
          return x
      def crash(code):
          os._exit(code)
      def nap(seconds):
          time.sleep(seconds)
          return seconds
      def stdlib(x):
          import json, email.parser, http.client, decimal, argparse
          return x
      def imports(x):
          import json, email.mime.text, http.client, xml.dom.minidom, asyncio, decimal
          return x
      """;

  /**
   * The import of {@code handlers:imports} at the module's top, as code written for {@code
   * --snapshot} puts it: a snapshot taken after the module's import holds the imported modules.
   */
  private static final String PRELOADED =
      """
      import json, email.mime.text, http.client, xml.dom.minidom, asyncio, decimal
      def imports(x):
          return x
      """;

  public static void main(String[] args) throws Exception {
    Path work = Path.of("/var/tmp/skiff-platform-bench");
    int calls = 2000;
    int reps = 5;
    int mapMax = 0;
    int parallelStarts = 8;
    String only = "warm,map,fanout,cold,bucket";
    int soakRounds = 200;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--work" -> work = Path.of(args[++i]);
        case "--calls" -> calls = Integer.parseInt(args[++i]);
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        case "--map-max" -> mapMax = Integer.parseInt(args[++i]);
        case "--parallel-starts" -> parallelStarts = Integer.parseInt(args[++i]);
        case "--only" -> only = args[++i];
        case "--soak-rounds" -> soakRounds = Integer.parseInt(args[++i]);
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    FsBench.sh("rm -rf " + work + " && mkdir -p " + work);
    Path home = work.resolve("home");
    Path code = Files.createDirectories(work.resolve("code"));
    Files.writeString(code.resolve("handlers.py"), HANDLERS);
    Files.writeString(code.resolve("preloaded.py"), PRELOADED);
    StringBuilder report = new StringBuilder();
    try (ImageStore store = ImageStore.open(home)) {
      Path rootfs = HostRootfs.python().build(work.resolve("rootfs"));
      store.importImage(rootfs.toString(), ImageRef.parse("py:1"), ImportProgress.NONE);
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
                      parallelStarts))) {
        String target = platform.target();
        String clientToken = platform.clientToken();
        String workerToken = platform.workerToken();
        try (ControlClient client = platform.client()) {
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
          if (parts.contains("soak")) {
            soak(client, code, home, work, soakRounds, report);
          }
        } finally {
          timers.shutdownNow();
        }
        if (List.of(only.split(",")).contains("bucket")) { // on workers of their own
          platform.worker().close();
          try (ControlClient client = ControlClient.connect(target, clientToken, null)) {
            coldBucket(client, target, workerToken, store, code, work, reps, report);
          }
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
        FunctionContainer.Spec.python(
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
    // A short scale-down window: the containers the warm-up started beyond what the backlog
    // needs stop before the timed runs (an idle sandbox still costs the host CPU).
    Autoscaling.Builder a = Autoscaling.newBuilder().setScaledownWindowMs(5_000);
    if (max > 0) {
      a.setMaxContainers(max);
    }
    client.deploy(fn("map", "handlers:echo").setAutoscaling(a).build(), code);
    mapOnce(client, "bench/map", 10_000); // warm-up: containers, JIT
    long started =
        client.containers().stream().filter(c -> c.getFunctionId().equals("bench/map")).count();
    Thread.sleep(7_000);
    mapOnce(client, "bench/map", 10_000);
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
                "%s inputs/s, median (min-max) of %d; the warm-up started %d containers, %d"
                    + " served the timed runs.%n%n",
                Samples.spread(rates, "%,.0f"),
                reps,
                started,
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

  /**
   * Cold calls of a function whose image is in a bucket and was never on this host: for each one a
   * new worker attaches with an empty home (no index, no chunk), the page cache is dropped, and the
   * timer runs from the call to its result. The bucket is S3Mock in this JVM behind a {@link
   * LatencyProxy} of 20 ms RTT. The trace is recorded once, by a worker that records (the runner
   * start and the handler's import), then the image is optimized for it, as {@code skiff optimize}
   * does. Baseline in the same run: the same image without trace or optimization.
   */
  private static void coldBucket(
      ControlClient client,
      String target,
      String workerToken,
      ImageStore origin,
      Path code,
      Path work,
      int reps,
      StringBuilder report)
      throws Exception {
    System.setProperty("aws.accessKeyId", "test-key");
    System.setProperty("aws.secretAccessKey", "test-secret");
    int rtt = 20;
    for (int i = 0; i < 500 && !client.workers().isEmpty(); i++) {
      Thread.sleep(10); // the scheduler has seen the other parts' worker go
    }
    try (S3Server s3 = new S3Server(Files.createDirectories(work.resolve("s3")))) {
      log("cold calls from a bucket: pushing py:1 to S3Mock");
      try (BlobStore bucket = s3.store("bench", work.resolve("tmp"), Duration.ofMinutes(5))) {
        origin.push(ImageRef.parse("py:1"), bucket, ImageStore.PushProgress.NONE);
      }
      String plainImage = "s3://" + S3Server.BUCKET + "/bench/py:1";
      String optImage = "s3://" + S3Server.BUCKET + "/bench/py:opt";
      client.deploy(fn("bucket-plain", "handlers:imports").setImage(plainImage).build(), code);
      client.deploy(fn("bucket-opt", "handlers:imports").setImage(optImage).build(), code);
      client.deploy(
          fn("bucket-local", "handlers:imports")
              .setImage(optImage)
              .setAutoscaling(Autoscaling.newBuilder().setScaledownWindowMs(500))
              .build(),
          code);
      log("recording the trace of a cold call (runner start and import)");
      coldBucketCall(
          client,
          target,
          workerToken,
          work,
          "record",
          s3.endpoint().toString(),
          TraceHook.Options.defaults().withPrefetch(false).withRecord(true),
          "bench/bucket-plain",
          false);
      log("optimizing a copy of py:1 for that trace and pushing it as py:opt");
      try (BlobStore bucket = s3.store("bench", work.resolve("tmp"), Duration.ofMinutes(5))) {
        Digest d = origin.resolve(ImageRef.parse("py:1")).orElseThrow();
        origin.tag(ImageRef.parse("py:opt"), d, "copy of py:1", 0);
        TraceStore.save(origin.blobs(), d, null, TraceStore.load(bucket, d, null).orElseThrow());
        TraceOptimizer.Result r = TraceOptimizer.optimize(origin, ImageRef.parse("py:opt"), null);
        origin.push(ImageRef.parse("py:opt"), bucket, ImageStore.PushProgress.NONE);
        TraceStore.copyAll(origin.blobs(), bucket, r.after());
      }
      client.deploy(
          fn("bucket-snap", "preloaded:imports").setImage(optImage).setSnapshot(true).build(),
          code);
      log("taking the memory snapshot of bucket-snap (it goes to the bucket)");
      coldBucketCall(
          client,
          target,
          workerToken,
          work,
          "snap-take",
          s3.endpoint().toString(),
          TraceHook.Options.defaults(),
          "bench/bucket-snap",
          false);
      List<double[]> opt = new ArrayList<>();
      List<double[]> plain = new ArrayList<>();
      List<double[]> local = new ArrayList<>();
      List<double[]> snap = new ArrayList<>();
      try (LatencyProxy proxy =
          LatencyProxy.start(
              new InetSocketAddress("127.0.0.1", s3.port()),
              Duration.ofNanos(rtt * 500_000L),
              1_000_000_000L / 8)) {
        String endpoint = "http://127.0.0.1:" + proxy.port();
        for (int r = 0; r < reps; r++) {
          opt.add(
              coldBucketCall(
                  client,
                  target,
                  workerToken,
                  work,
                  "opt" + r,
                  endpoint,
                  TraceHook.Options.defaults(),
                  "bench/bucket-opt",
                  false));
          plain.add(
              coldBucketCall(
                  client,
                  target,
                  workerToken,
                  work,
                  "plain" + r,
                  endpoint,
                  TraceHook.Options.defaults().withPrefetch(false),
                  "bench/bucket-plain",
                  false));
          local.add(
              coldBucketCall(
                  client,
                  target,
                  workerToken,
                  work,
                  "local" + r,
                  endpoint,
                  TraceHook.Options.defaults(),
                  "bench/bucket-local",
                  true));
          snap.add(
              coldBucketCall(
                  client,
                  target,
                  workerToken,
                  work,
                  "snap" + r,
                  endpoint,
                  TraceHook.Options.defaults(),
                  "bench/bucket-snap",
                  false));
          log(String.format(Locale.ROOT, "bucket rep %d/%d done", r + 1, reps));
        }
      }
      report
          .append(
              "### Cold call from a bucket (image never on this host, S3 at "
                  + rtt
                  + " ms RTT, 1 Gbit/s)\n\n")
          .append(
              "| image | call to result (s) | image mounted at (s) | sandbox started at (s) |\n"
                  + "| --- | ---: | ---: | ---: |\n")
          .append(bucketRow("trace + optimize", opt))
          .append(bucketRow("baseline: same image, no trace, not optimized", plain))
          .append(
              bucketRow(
                  "reference: the optimized image already mounted here, chunks cached", local))
          .append(
              bucketRow(
                  "trace + optimize, the imports at the module's top, restored from the"
                      + " function's memory snapshot in the bucket",
                  snap))
          .append(
              String.format(
                  Locale.ROOT,
                  "%nMedians (min-max) of %d. Trace + optimize / baseline: %.2f; the bucket adds %.3f"
                      + " s to a cold start from this host's cache; target <= 0.5 s.%n%n",
                  opt.size(),
                  Samples.median(column(opt, 0)) / Samples.median(column(plain, 0)),
                  Samples.median(column(opt, 0)) - Samples.median(column(local, 0))));
    }
  }

  private static List<Double> column(List<double[]> rows, int i) {
    return rows.stream().map(r -> r[i]).toList();
  }

  private static String bucketRow(String what, List<double[]> rows) {
    String mounted = rows.get(0)[1] < 0 ? "(before)" : Samples.spread(column(rows, 1), "%.3f");
    return "| "
        + what
        + " | "
        + Samples.spread(column(rows, 0), "%.3f")
        + " | "
        + mounted
        + " | "
        + Samples.spread(column(rows, 2), "%.3f")
        + " |\n";
  }

  /**
   * One cold call on a new worker with an empty home that reaches the bucket at {@code endpoint};
   * the worker is attached (resident) before the timer starts and closed after.
   */
  private static double[] coldBucketCall(
      ControlClient client,
      String target,
      String workerToken,
      Path work,
      String name,
      String endpoint,
      TraceHook.Options trace,
      String fn,
      boolean warm)
      throws Exception {
    Path home = work.resolve("cold-" + name);
    FsBench.sh("rm -rf " + home);
    Remotes remotes = S3Server.remotes(URI.create(endpoint), Duration.ofMinutes(1), 3);
    double secs;
    long t0;
    ManagedChannel channel = ControlClient.channel(target, null);
    long[] mounted = {0};
    long[] started = {0};
    try (ImageStore store = ImageStore.open(home.resolve("store"));
        SandboxRuntime rt =
            SandboxRuntime.open(
                store,
                SandboxRuntime.Config.defaults()
                    .withRemotes(remotes)
                    .withTrace(trace)
                    .withListener(
                        e -> {
                          if (e instanceof RuntimeEvent.ImageMounted) {
                            mounted[0] = System.nanoTime();
                          } else if (e instanceof RuntimeEvent.SandboxStarted) {
                            started[0] = System.nanoTime();
                          }
                        }));
        Worker worker =
            Worker.start(
                store,
                rt,
                channel,
                workerToken,
                new Worker.Options(
                    "cold-" + name,
                    2,
                    8L << 30,
                    List.of(),
                    home.resolve("worker"),
                    "/usr/bin/python3",
                    8))) {
      worker.attached().get(30, TimeUnit.SECONDS);
      if (warm) { // the image mounted and its chunks cached by a first call, its container gone
        Result r = client.call(fn, ControlClient.input("[1]", ""), null);
        if (r.getStatus() != Status.SUCCESS) {
          throw new IllegalStateException("warm-up call failed: " + r);
        }
        awaitNoContainers(client, fn);
      }
      t0 = System.nanoTime();
      Result r = client.call(fn, ControlClient.input("[1]", ""), null);
      long end = System.nanoTime();
      secs = (end - t0) / 1e9;
      if (r.getStatus() != Status.SUCCESS) {
        throw new IllegalStateException("cold call from the bucket failed: " + r);
      }
      log(
          String.format(
              Locale.ROOT,
              "%s: image mounted at %.0f ms, sandbox started at %.0f ms, result at %.0f ms",
              name,
              (mounted[0] - t0) / 1e6,
              (started[0] - t0) / 1e6,
              (end - t0) / 1e6));
    } finally {
      channel.shutdownNow();
    }
    // the next cold call must not find this worker's container
    for (int i = 0;
        i < 500 && client.workers().stream().anyMatch(w -> w.getId().equals("cold-" + name));
        i++) {
      Thread.sleep(10);
    }
    return new double[] {secs, (mounted[0] - t0) / 1e9, (started[0] - t0) / 1e9};
  }

  /**
   * The scheduler, worker and client of one process over many rounds, each a new version of a
   * function (whose containers then drain and stop), 5 calls and a map of 200, and every tenth a
   * call that crashes its container and one that times out: the process's heap after GC, RSS,
   * threads, open files, FUSE mounts and sandbox state directories, sampled every tenth of the run.
   */
  private static void soak(
      ControlClient client, Path code, Path home, Path work, int rounds, StringBuilder report)
      throws Exception {
    log("soak: " + rounds + " rounds");
    int every = Math.max(1, rounds / 10);
    List<Soak.Sample> samples = new ArrayList<>();
    List<Integer> containers = new ArrayList<>();
    samples.add(Soak.sample(0, home, 0));
    containers.add(client.containers().size());
    Autoscaling quick = Autoscaling.newBuilder().setScaledownWindowMs(1_000).build();
    client.deploy(fn("soak-crash", "handlers:crash").setAutoscaling(quick).build(), code);
    client.deploy(
        fn("soak-slow", "handlers:nap").setTimeoutMs(500).setAutoscaling(quick).build(), code);
    long t0 = System.nanoTime();
    for (int round = 1; round <= rounds; round++) {
      client.deploy(
          fn("soak", "handlers:echo")
              .putEnv("ROUND", Integer.toString(round))
              .setAutoscaling(quick)
              .build(),
          code);
      for (int i = 0; i < 5; i++) {
        Result r = client.call("bench/soak", ControlClient.input("[" + i + "]", ""), null);
        if (r.getStatus() != Status.SUCCESS
            || !r.getOutputJson().toStringUtf8().equals(Integer.toString(i))) {
          throw new IllegalStateException("soak round " + round + ": " + r);
        }
      }
      AtomicLong wrong = new AtomicLong();
      client.map(
          "bench/soak",
          IntStream.range(0, 200).mapToObj(i -> ControlClient.input("[" + i + "]", "")).iterator(),
          200,
          (i, r) -> {
            if (!r.getOutputJson().toStringUtf8().equals(Long.toString(i))) {
              wrong.incrementAndGet();
            }
          });
      if (wrong.get() > 0) {
        throw new IllegalStateException("soak round " + round + ": " + wrong + " wrong results");
      }
      if (round % 10 == 0) {
        Status crashed =
            client.call("bench/soak-crash", ControlClient.input("[3]", ""), null).getStatus();
        Status slow =
            client.call("bench/soak-slow", ControlClient.input("[5]", ""), null).getStatus();
        if (crashed != Status.INTERNAL || slow != Status.TIMEOUT) {
          throw new IllegalStateException("soak round " + round + ": " + crashed + ", " + slow);
        }
      }
      if (round % every == 0) {
        samples.add(Soak.sample(round, home, (System.nanoTime() - t0) / 1e6 / every));
        containers.add(client.containers().size());
        t0 = System.nanoTime();
        log("soak: round " + round);
      }
    }
    report
        .append(
            String.format(
                Locale.ROOT,
                "### Soak: %d rounds (a new version, 5 calls, a map of 200; every tenth round a"
                    + " crash and a timeout)%n%n",
                rounds))
        .append(
            "| rounds | heap after GC (MiB) | RSS (MiB) | threads | open files | FUSE mounts |"
                + " sandbox dirs | containers | ms per round |\n")
        .append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < samples.size(); i++) {
      Soak.Sample x = samples.get(i);
      report.append(
          String.format(
              Locale.ROOT,
              "| %d | %.0f | %.0f | %d | %d | %d | %d | %d | %s |%n",
              x.cycle(),
              x.heapKb() / 1024.0,
              x.rssKb() / 1024.0,
              x.threads(),
              x.fds(),
              x.fuseMounts(),
              x.stateDirs(),
              containers.get(i),
              x.cycle() == 0 ? "-" : String.format(Locale.ROOT, "%.0f", x.msPerCycle())));
    }
    report.append("\n");
  }
}
