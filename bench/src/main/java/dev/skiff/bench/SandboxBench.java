package dev.skiff.bench;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.testing.LatencyProxy;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.runtime.Sandbox;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxProcess;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.testing.HostRootfs;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Sandbox starts, from the {@code skiff} command to the first byte of the command's output and to
 * its exit, for {@code /bin/true} and for a Python import, on: (a) a native root directory, (b) the
 * image from the local store (page cache warm), (c) the image lazily from S3 at an emulated RTT,
 * with an empty home, without and with the trace replayed, (d) a restore of a memory snapshot taken
 * after the imports; and (a), (b), (d) again through the Java API in this JVM, as the scheduler's
 * worker will start them. While (b) and (d) run, a {@code skiff mount} of the image serves it, as a
 * host keeps its images mounted. The image is this host's Python (binary, libraries, standard
 * library) and shell tools, built on the spot. Needs root, FUSE and runsc.
 *
 * <pre>
 * tools/setup && mvn -q -pl bench dependency:build-classpath -Dmdep.outputFile=target/classpath.txt
 * java $(sed -n 's/^skiff.jvm.flags=//p' jvm.properties) -Dskiff.repo=$PWD \
 *     -cp bench/target/classes:$(cat bench/target/classpath.txt) \
 *     dev.skiff.bench.SandboxBench [--work /var/tmp/skiff-sandbox-bench] [--reps 5] [--rtt 20] [--mbps 1000]
 * </pre>
 */
public final class SandboxBench {
  private static final String PY = "/usr/bin/python3";
  private static final String IMPORTS =
      "import json, email.mime.text, http.client, xml.dom.minidom, asyncio, decimal, sqlite3";

  private final Path work;
  private final Path repo;
  private final int reps;
  private final int rtt;
  private final int mbps;
  private final Map<String, List<double[]>> samples = new LinkedHashMap<>();
  private S3Server server;
  private LatencyProxy proxy;
  private Process mount;

  private SandboxBench(Path work, Path repo, int reps, int rtt, int mbps) {
    this.work = work;
    this.repo = repo;
    this.reps = reps;
    this.rtt = rtt;
    this.mbps = mbps;
  }

  public static void main(String[] args) throws Exception {
    Path work = Path.of("/var/tmp/skiff-sandbox-bench");
    int reps = 5;
    int rtt = 20;
    int mbps = 1000;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--work" -> work = Path.of(args[++i]);
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        case "--rtt" -> rtt = Integer.parseInt(args[++i]);
        case "--mbps" -> mbps = Integer.parseInt(args[++i]);
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    System.setProperty("aws.accessKeyId", "test-key");
    System.setProperty("aws.secretAccessKey", "test-secret");
    SandboxBench b =
        new SandboxBench(
            work, Path.of(System.getProperty("skiff.repo", ".")).toAbsolutePath(), reps, rtt, mbps);
    try {
      b.setUp();
      b.run();
      b.print();
    } finally {
      if (b.mount != null) {
        FsBench.sh("umount " + work.resolve("mnt") + " || true");
        b.mount.waitFor(30, TimeUnit.SECONDS);
      }
      if (b.proxy != null) {
        b.proxy.close();
      }
      if (b.server != null) {
        b.server.close();
      }
    }
  }

  private Path store() {
    return work.resolve("store");
  }

  private Path rootfs() {
    return work.resolve("rootfs");
  }

  private void setUp() throws Exception {
    String pyver =
        FsBench.sh(PY + " -c 'import sys; print(\"python%d.%d\" % sys.version_info[:2])'").strip();
    if (!Files.exists(work.resolve("rootfs.done"))) {
      log(
          "building the image: this host's "
              + pyver
              + " with its libraries and standard library, and shell tools");
      FsBench.sh("rm -rf " + work + " && mkdir -p " + work);
      HostRootfs fs =
          HostRootfs.tools()
              .binaries(Path.of(PY).toRealPath().toString())
              .tree("/usr/lib/" + pyver);
      try (Stream<Path> s = Files.list(Path.of("/usr/lib", pyver, "lib-dynload"))) {
        s.filter(p -> p.toString().endsWith(".so")).forEach(p -> fs.binaries(p.toString()));
      }
      fs.build(rootfs());
      FsBench.sh("cp " + Path.of(PY).toRealPath() + " " + rootfs() + PY);
      try (ImageStore s = ImageStore.open(store())) {
        s.importImage(rootfs().toString(), ImageRef.parse("py:1"), ImportProgress.NONE);
      }
      Files.writeString(work.resolve("rootfs.done"), Instant.now().toString());
    }
    FsBench.sh("rm -rf " + work.resolve("s3") + " " + store().resolve("snapshots"));
    server = new S3Server(work.resolve("s3"));
    proxy =
        LatencyProxy.start(
            new InetSocketAddress("127.0.0.1", server.port()),
            Duration.ofMillis(rtt / 2),
            mbps * 1_000_000L / 8);
    log("pushing py:1 to the S3 server");
    try (ImageStore origin = ImageStore.open(store());
        BlobStore bucket = server.store("sb", work.resolve("tmp"), Duration.ofMinutes(10))) {
      origin.push(ImageRef.parse("py:1"), bucket, ImageStore.PushProgress.NONE);
    }
    log("recording a trace of the sandboxed Python start (skiff run --record s3://...)");
    Run r =
        skiff(
            freshHome(),
            null,
            "run",
            "--record",
            "--no-prefetch",
            "--endpoint",
            endpoint(),
            remoteImage(),
            "--",
            PY,
            "-c",
            IMPORTS + "; print('ok')");
    check(r, "ok\n");
    log("taking a memory snapshot after the imports (skiff snapshot create)");
    r =
        skiff(
            store(),
            null,
            "snapshot",
            "create",
            "py:1",
            "imported",
            "--",
            PY,
            "-c",
            IMPORTS + "\nimport sys\nprint('skiff:ready', flush=True)\nexec(sys.stdin.read())");
    if (r.exit != 0) {
      throw new IOException("snapshot failed: " + r.err);
    }
    log(r.out.strip());
    log(
        "serving py:1 from a long-lived skiff mount, as a host keeps its images mounted (skiff run finds it)");
    List<String> cmd = FsBench.skiffCli(repo);
    Files.createDirectories(work.resolve("mnt"));
    cmd.addAll(List.of("mount", "--store=" + store(), "py:1", work.resolve("mnt").toString()));
    mount =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(work.resolve("mount.log").toFile())
            .start();
    for (int i = 0;
        i < 100 && !Files.readString(work.resolve("mount.log")).startsWith("mounted");
        i++) {
      Thread.sleep(100);
    }
  }

  private String endpoint() {
    return "http://127.0.0.1:" + proxy.port();
  }

  private String remoteImage() {
    return "s3://" + S3Server.BUCKET + "/sb/py:1";
  }

  private Path freshHome() throws Exception {
    Path home = work.resolve("lazy-home");
    FsBench.sh("rm -rf " + home + " && sync && echo 3 > /proc/sys/vm/drop_caches");
    return home;
  }

  private void run() throws Exception {
    String py = IMPORTS + "; print('ok')";
    try (ImageStore s = ImageStore.open(store());
        SandboxRuntime rt = SandboxRuntime.open(s, SandboxRuntime.Config.defaults())) {
      run(rt, py);
    }
  }

  /**
   * The same starts through the Java API, as the scheduler's worker makes them: a runtime that
   * lives across calls, timed from the call to the first byte of output and to the exit.
   */
  private void inProcess(SandboxRuntime rt, String py) throws Exception {
    for (boolean nativeRoot : new boolean[] {true, false}) {
      ImageSpec image = ImageSpec.parse(nativeRoot ? rootfs().toString() : "py:1");
      String v = nativeRoot ? "API: a native directory" : "API: b casfs, warm";
      measure(
          v + "|true",
          api(() -> rt.run(image, SandboxOptions.defaults(), List.of("/bin/true"), false), null),
          "");
      measure(
          v + "|python",
          api(() -> rt.run(image, SandboxOptions.defaults(), List.of(PY, "-c", py), false), null),
          "ok\n");
    }
    measure(
        "API: d restore of a snapshot|python",
        api(
            () ->
                rt.restore(
                    rt.snapshots().find(ImageSpec.parse("py:1"), "imported"),
                    SandboxOptions.defaults(),
                    true),
            "print('ok')\n"),
        "ok\n");
  }

  private interface Start {
    Sandbox start() throws IOException;
  }

  private Run api(Start start, String stdin) throws Exception {
    long t0 = System.nanoTime();
    try (Sandbox sb = start.start()) {
      SandboxProcess p = sb.main().orElseThrow();
      if (stdin != null) {
        try (var in = p.stdin()) {
          in.write(stdin.getBytes(StandardCharsets.UTF_8));
        }
      }
      Thread err = p.pipeStderrTo(java.io.OutputStream.nullOutputStream());
      StringBuilder text = new StringBuilder();
      double first = readTimed(p.stdout(), t0, text);
      int exit = p.waitFor().code();
      double done = (System.nanoTime() - t0) / 1e9;
      err.join();
      return new Run(exit, first, done, text.toString(), "");
    }
  }

  private void run(SandboxRuntime rt, String py) throws Exception {
    for (int i = 0; i < reps; i++) {
      measure(
          "a native directory|true",
          skiff(store(), null, "run", rootfs().toString(), "--", "/bin/true"),
          "");
      measure(
          "a native directory|python",
          skiff(store(), null, "run", rootfs().toString(), "--", PY, "-c", py),
          "ok\n");
      measure("b casfs, warm|true", skiff(store(), null, "run", "py:1", "--", "/bin/true"), "");
      measure(
          "b casfs, warm|python", skiff(store(), null, "run", "py:1", "--", PY, "-c", py), "ok\n");
      measure(
          "c lazy from S3, no prefetch|python",
          skiff(
              freshHome(),
              null,
              "run",
              "--no-prefetch",
              "--endpoint",
              endpoint(),
              remoteImage(),
              "--",
              PY,
              "-c",
              py),
          "ok\n");
      measure(
          "c lazy from S3, trace|python",
          skiff(
              freshHome(),
              null,
              "run",
              "--endpoint",
              endpoint(),
              remoteImage(),
              "--",
              PY,
              "-c",
              py),
          "ok\n");
      measure(
          "d restore of a snapshot|python",
          skiff(store(), "print('ok')\n", "restore", "-i", "py:1", "imported"),
          "ok\n");
      inProcess(rt, py);
      log("rep " + (i + 1) + "/" + reps + " done");
    }
  }

  /** One command's timings: to the first byte of stdout, to exit; and what it printed. */
  private record Run(int exit, double firstByte, double done, String out, String err) {}

  private Run skiff(Path home, String stdin, String... args) throws Exception {
    List<String> cmd = FsBench.skiffCli(repo);
    List<String> a = new ArrayList<>(List.of(args));
    a.add(a.get(0).equals("snapshot") ? 2 : 1, "--store=" + home);
    cmd.addAll(a);
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().put("AWS_ACCESS_KEY_ID", "test-key");
    pb.environment().put("AWS_SECRET_ACCESS_KEY", "test-secret");
    pb.environment().put("AWS_REGION", "us-east-1");
    if (stdin == null) {
      pb.redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
    }
    Path err = Files.createTempFile("sandboxbench-", ".err");
    pb.redirectError(err.toFile());
    long t0 = System.nanoTime();
    Process p = pb.start();
    if (stdin != null) {
      try (var in = p.getOutputStream()) {
        in.write(stdin.getBytes(StandardCharsets.UTF_8));
      }
    }
    StringBuilder text = new StringBuilder();
    double first = readTimed(p.getInputStream(), t0, text);
    if (!p.waitFor(5, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      throw new IOException("skiff " + String.join(" ", args) + " did not finish");
    }
    double done = (System.nanoTime() - t0) / 1e9;
    String e = Files.readString(err);
    Files.delete(err);
    return new Run(p.exitValue(), first, done, text.toString(), e);
  }

  /**
   * Reads {@code out} to its end into {@code text}; returns seconds from {@code t0} to its first
   * byte.
   */
  private static double readTimed(InputStream out, long t0, StringBuilder text) throws IOException {
    byte[] buf = new byte[8192];
    double first = Double.NaN;
    for (int n; (n = out.read(buf)) >= 0; ) {
      if (Double.isNaN(first) && n > 0) {
        first = (System.nanoTime() - t0) / 1e9;
      }
      text.append(new String(buf, 0, n, StandardCharsets.UTF_8));
    }
    return first;
  }

  private static void check(Run r, String want) throws IOException {
    if (r.exit != 0 || !r.out.equals(want)) {
      throw new IOException("unexpected result (exit " + r.exit + "): " + r.out + r.err);
    }
  }

  private void measure(String key, Run r, String want) throws IOException {
    check(r, want);
    samples.computeIfAbsent(key, k -> new ArrayList<>()).add(new double[] {r.firstByte, r.done});
  }

  private double median(String key, int which) {
    List<Double> v =
        samples.getOrDefault(key, List.of()).stream()
            .map(d -> d[which])
            .filter(d -> !d.isNaN())
            .toList();
    return v.isEmpty() ? Double.NaN : Samples.median(v);
  }

  private String cell(String key, int which) {
    List<Double> v =
        samples.getOrDefault(key, List.of()).stream()
            .map(d -> d[which])
            .filter(d -> !d.isNaN())
            .toList();
    if (v.isEmpty()) {
      return "-";
    }
    return Samples.spread(v, "%.3f");
  }

  private void print() throws Exception {
    String runsc = FsBench.sh("runsc --version | head -1").strip();
    StringBuilder out = new StringBuilder();
    out.append("Date ")
        .append(Instant.now())
        .append("; ")
        .append(reps)
        .append(" repetitions, interleaved; ")
        .append(runsc)
        .append("; lazy starts: empty home and dropped page cache, RTT ")
        .append(rtt)
        .append(" ms and ")
        .append(mbps)
        .append(" Mbit/s by LatencyProxy.\n\n");
    out.append(
        "| root | /bin/true: to exit (s) | python: to first byte (s) | python: to exit (s) | first byte / native |\n");
    out.append("| --- | ---: | ---: | ---: | ---: |\n");
    double nativeFirst = median("a native directory|python", 0);
    for (String v :
        List.of(
            "a native directory",
            "b casfs, warm",
            "c lazy from S3, no prefetch",
            "c lazy from S3, trace",
            "d restore of a snapshot",
            "API: a native directory",
            "API: b casfs, warm",
            "API: d restore of a snapshot")) {
      out.append(
          String.format(
              Locale.ROOT,
              "| %s | %s | %s | %s | %.2fx |%n",
              v,
              cell(v + "|true", 1),
              cell(v + "|python", 0),
              cell(v + "|python", 1),
              median(v + "|python", 0) / nativeFirst));
    }
    out.append(
        String.format(
            Locale.ROOT,
            "%n/bin/true to exit, casfs warm against native: %.2fx (CLI), %.2fx (API)%n",
            median("b casfs, warm|true", 1) / median("a native directory|true", 1),
            median("API: b casfs, warm|true", 1) / median("API: a native directory|true", 1)));
    out.append(
        String.format(
            Locale.ROOT,
            "python to first byte, casfs warm against native: %.2fx (CLI), %.2fx (API)%n",
            median("b casfs, warm|python", 0) / median("a native directory|python", 0),
            median("API: b casfs, warm|python", 0) / median("API: a native directory|python", 0)));
    Files.writeString(work.resolve("report.md"), out);
    System.out.println(out);
  }

  private static void log(String s) {
    System.err.println("[sandboxbench] " + s);
  }
}
