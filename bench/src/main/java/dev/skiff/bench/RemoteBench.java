package dev.skiff.bench;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.S3Location;
import dev.skiff.casfs.testing.LatencyProxy;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.tracer.TraceOptimizer;
import dev.skiff.tracer.TraceStore;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Cold starts from S3: the Python import with its stdlib served by a lazy skiff mount of an image
 * in a bucket, against "docker pull": download the image's layer, extract it, run. A real S3 API
 * server (S3Mock) runs in this JVM; a {@link LatencyProxy} between it and the clients adds the
 * round-trip time and the bandwidth cap. Every lazy start begins with an empty skiff home (no
 * index, no chunk cache) and a dropped page cache, with and without replaying a trace recorded once
 * at set-up (a `--record` mount of the same start, written to the bucket). Also: a cold sequential
 * read of the 1 GiB file through the lazy mount. Needs root and the dataset FsBench builds.
 *
 * <pre>
 * tools/setup && mvn -q -pl bench dependency:build-classpath -Dmdep.outputFile=target/classpath.txt
 * java $(sed -n 's/^skiff.jvm.flags=//p' jvm.properties) -Dskiff.repo=$PWD \
 *     -cp bench/target/classes:casfs/target/test-classes:$(cat bench/target/classpath.txt) \
 *     dev.skiff.bench.RemoteBench [--work /var/tmp/skiff-bench] [--reps 5] [--rtts 0,5,20] [--mbps 1000]
 * </pre>
 */
public final class RemoteBench {
  private static final String PY = "/usr/bin/python3";
  private static final String IMPORTS =
      "import json, email.mime.text, http.client, xml.dom.minidom, asyncio, decimal, sqlite3";

  private final Path work;
  private final Path repo;
  private final int reps;
  private final List<Integer> rtts;
  private final long bytesPerSecond;
  private final int mbps;
  private final Map<String, List<Double>> samples = new LinkedHashMap<>();
  private final Map<String, List<long[]>> fetches = new LinkedHashMap<>();
  private S3Server server;
  private boolean sequential = true;
  private Path rootfs;
  private List<String> windows = List.of();
  private final Map<String, Long> wire = new LinkedHashMap<>();

  private RemoteBench(Path work, Path repo, int reps, List<Integer> rtts, int mbps) {
    this.work = work;
    this.repo = repo;
    this.reps = reps;
    this.rtts = rtts;
    this.mbps = mbps;
    this.bytesPerSecond = mbps * 1_000_000L / 8;
  }

  public static void main(String[] args) throws Exception {
    Path work = Path.of("/var/tmp/skiff-bench");
    int reps = 5;
    List<Integer> rtts = List.of(0, 5, 20);
    int mbps = 1000;
    boolean seq = true;
    Path rootfsArg = null;
    List<String> windowsArg = List.of();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--work" -> work = Path.of(args[++i]);
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        case "--rtts" ->
            rtts = java.util.Arrays.stream(args[++i].split(",")).map(Integer::parseInt).toList();
        case "--mbps" -> mbps = Integer.parseInt(args[++i]);
        case "--no-seq" -> seq = false;
        case "--rootfs" -> rootfsArg = Path.of(args[++i]);
        case "--windows" -> windowsArg = List.of(args[++i].split(","));
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    System.setProperty("aws.accessKeyId", "test-key");
    System.setProperty("aws.secretAccessKey", "test-secret");
    RemoteBench b =
        new RemoteBench(
            work,
            Path.of(System.getProperty("skiff.repo", ".")).toAbsolutePath(),
            reps,
            rtts,
            mbps);
    b.sequential = seq && rootfsArg == null;
    b.rootfs = rootfsArg;
    b.windows = windowsArg;
    try {
      b.setUp();
      b.run();
      b.print();
    } finally {
      if (b.server != null) {
        b.server.close();
      }
    }
  }

  /** The tree the image is made of: FsBench's dataset, or the root filesystem given. */
  private Path dataset() {
    return rootfs != null ? rootfs : work.resolve("dataset");
  }

  private void setUp() throws Exception {
    if (rootfs != null && !Files.exists(work.resolve("store/blobs/refs/bench/1"))) {
      log("importing " + rootfs + " as bench:1 and packing it as one gzip layer");
      Files.createDirectories(work);
      FsBench.sh("tar -C " + rootfs + " -cf - . | gzip -1 > " + work.resolve("layer.tar.gz"));
      try (ImageStore origin = ImageStore.open(work.resolve("store"))) {
        origin.importImage(
            rootfs.toString(),
            ImageRef.parse("bench:1"),
            dev.skiff.casfs.image.ImportProgress.NONE);
      }
    }
    if (rootfs == null && !Files.exists(work.resolve("dataset.done"))
        || !Files.exists(work.resolve("store/blobs/refs/bench/1"))) {
      throw new IllegalStateException(
          "run FsBench first: it builds the dataset and imports bench:1 into " + work);
    }
    FsBench.sh("rm -rf " + work.resolve("s3"));
    server = new S3Server(work.resolve("s3"));
    log("pushing bench:1 and its layer to the S3 server");
    try (ImageStore origin = ImageStore.open(work.resolve("store"));
        BlobStore bucket = server.store("bench", work.resolve("tmp"), Duration.ofMinutes(10))) {
      origin.push(ImageRef.parse("bench:1"), bucket, ImageStore.PushProgress.NONE);
      bucket.putFile("layers/layer.tar.gz", work.resolve("layer.tar.gz"));
    }
    log("recording a trace of the Python start (skiff mount --record, straight to the server)");
    lazyStart(server.endpoint().toString(), -1, Mode.RECORD);
    log(
        "optimizing a copy of the image for that trace (skiff optimize) and pushing it as bench:opt");
    try (ImageStore origin = ImageStore.open(work.resolve("store"));
        BlobStore bucket = server.store("bench", work.resolve("tmp"), Duration.ofMinutes(10))) {
      dev.skiff.casfs.digest.Digest d = origin.resolve(ImageRef.parse("bench:1")).orElseThrow();
      origin.tag(ImageRef.parse("bench:opt"), d, "copy of bench:1", 0);
      TraceStore.save(origin.blobs(), d, null, TraceStore.load(bucket, d, null).orElseThrow());
      TraceOptimizer.Result r = TraceOptimizer.optimize(origin, ImageRef.parse("bench:opt"), null);
      origin.push(ImageRef.parse("bench:opt"), bucket, ImageStore.PushProgress.NONE);
      TraceStore.copyAll(origin.blobs(), bucket, r.after()); // as skiff push does
      for (String tag : List.of("bench:1", "bench:opt")) {
        dev.skiff.casfs.digest.Digest t = origin.resolve(ImageRef.parse(tag)).orElseThrow();
        wire.put(
            "index|" + tag,
            bucket.size(dev.skiff.casfs.store.BlobNames.compressedIndex(t)).orElse(0L));
        wire.put("trace|" + tag, bucket.size(TraceStore.name(t, null)).orElse(0L));
      }
    }
  }

  /**
   * How a lazy start runs: without the trace, replaying it, recording it, or reading the big file.
   */
  private enum Mode {
    PLAIN,
    TRACE,
    RECORD,
    SEQUENTIAL,
    OPTIMIZED,
    WARM
  }

  private void run() throws Exception {
    for (int rep = 1; rep <= reps; rep++) {
      for (int rtt : rtts) {
        try (LatencyProxy proxy =
            LatencyProxy.start(
                new InetSocketAddress("127.0.0.1", server.port()),
                Duration.ofNanos(rtt * 500_000L),
                bytesPerSecond)) {
          String endpoint = "http://127.0.0.1:" + proxy.port();
          add("pull+extract|" + rtt, pullAndExtract(endpoint));
          add("lazy|" + rtt, lazyStart(endpoint, rtt, Mode.PLAIN));
          add("trace|" + rtt, lazyStart(endpoint, rtt, Mode.TRACE));
          add("opt|" + rtt, lazyStart(endpoint, rtt, Mode.OPTIMIZED));
          add("warm|" + rtt, lazyStart(endpoint, rtt, Mode.WARM));
          if (sequential) {
            add("seq|" + rtt, lazyStart(endpoint, rtt, Mode.SEQUENTIAL));
          }
          for (String w : windows) {
            add("lazy|" + rtt + "|" + w, lazyStart(endpoint, rtt, Mode.PLAIN, w));
            add("trace|" + rtt + "|" + w, lazyStart(endpoint, rtt, Mode.TRACE, w));
            add("opt|" + rtt + "|" + w, lazyStart(endpoint, rtt, Mode.OPTIMIZED, w));
          }
        }
        log(String.format(Locale.ROOT, "rep %d/%d rtt %d ms done", rep, reps, rtt));
      }
    }
  }

  private void add(String key, double v) {
    samples.computeIfAbsent(key, k -> new ArrayList<>()).add(v);
  }

  /**
   * "docker pull": download the layer (64 MiB ranged GETs in order), extract it, run Python on it.
   */
  private double pullAndExtract(String endpoint) throws Exception {
    Path dir = work.resolve("pulled");
    FsBench.sh(
        "rm -rf " + dir + " && mkdir -p " + dir + " && rm -f " + work.resolve("pulled.tar.gz"));
    dropCaches();
    long t0 = System.nanoTime();
    S3Location via =
        new S3Location(S3Server.BUCKET, "bench", URI.create(endpoint), "us-east-1", true);
    try (BlobStore bucket =
            BlobStores.s3(
                via, work.resolve("tmp"), S3Server.credentials(), Duration.ofMinutes(5), 3);
        FileChannel out =
            FileChannel.open(
                work.resolve("pulled.tar.gz"),
                StandardOpenOption.CREATE,
                StandardOpenOption.WRITE)) {
      long size = bucket.size("layers/layer.tar.gz").orElseThrow();
      for (long off = 0; off < size; off += 64 << 20) {
        ByteBuffer b =
            bucket.readFully("layers/layer.tar.gz", off, (int) Math.min(64 << 20, size - off));
        while (b.hasRemaining()) {
          out.write(b);
        }
      }
    }
    FsBench.sh("tar -xzf " + work.resolve("pulled.tar.gz") + " -C " + dir);
    FsBench.sh("PYTHONHOME=" + dir + "/usr " + PY + " -S -c '" + IMPORTS + "'");
    double secs = (System.nanoTime() - t0) / 1e9;
    FsBench.sh("rm -rf " + dir + " " + work.resolve("pulled.tar.gz"));
    return secs;
  }

  /**
   * From nothing on the host to the end of the workload: an empty skiff home, `skiff mount
   * s3://...` (pulls the index), then the Python import, or a read of the 1 GiB file.
   */
  private double lazyStart(String endpoint, int rtt, Mode mode) throws Exception {
    return lazyStart(endpoint, rtt, mode, null);
  }

  /**
   * {@link #lazyStart(String, int, Mode)} with the mount's neighbour window set ({@code --window}).
   */
  private double lazyStart(String endpoint, int rtt, Mode mode, String window) throws Exception {
    boolean sequential = mode == Mode.SEQUENTIAL;
    Path home = work.resolve("lazy-home");
    Path mnt = Files.createDirectories(work.resolve("mnt-lazy"));
    if (mode != Mode.WARM) {
      FsBench.sh("rm -rf " + home);
      dropCaches();
    }
    List<String> cmd = FsBench.skiffCli(repo);
    cmd.addAll(List.of("mount", "--store", home.toString(), "--endpoint", endpoint));
    if (window != null) {
      cmd.addAll(List.of("--window", window));
    }
    if (mode == Mode.PLAIN || mode == Mode.SEQUENTIAL) {
      cmd.add("--no-prefetch");
    } else if (mode == Mode.RECORD) {
      cmd.addAll(List.of("--record", "--no-prefetch"));
    }
    String image =
        switch (mode) {
          case OPTIMIZED -> "s3://" + S3Server.BUCKET + "/bench/bench:opt";
          case WARM -> "bench:opt"; // pulled by the previous start, its chunks in the disk cache
          default -> "s3://" + S3Server.BUCKET + "/bench/bench:1";
        };
    cmd.addAll(List.of(image, mnt.toString()));
    long t0 = System.nanoTime();
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().put("AWS_ACCESS_KEY_ID", "test-key");
    pb.environment().put("AWS_SECRET_ACCESS_KEY", "test-secret");
    pb.environment().put("AWS_REGION", "us-east-1");
    Process p = pb.start();
    BufferedReader r =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    String line = r.readLine();
    if (line == null || !line.startsWith("mounted")) {
      throw new IOException("lazy mount failed: " + line);
    }
    if (mode == Mode.PLAIN) {
      add("ready|" + rtt, (System.nanoTime() - t0) / 1e9);
    }
    if (sequential) {
      t0 = System.nanoTime(); // throughput of the read alone
      FsBench.sh(PY + " " + work.resolve("workload.py") + " seq " + mnt + " big/1g.bin");
    } else {
      FsBench.sh("PYTHONHOME=" + mnt + "/usr " + PY + " -S -c '" + IMPORTS + "'");
    }
    double secs = (System.nanoTime() - t0) / 1e9;
    FsBench.sh("umount " + mnt);
    String l;
    while ((l = r.readLine()) != null) {
      var m =
          java.util.regex.Pattern.compile("from the store \\(([^ ]+) ([^ ]+) in ([0-9,]+) reads\\)")
              .matcher(l);
      if (m.find()) {
        double v = Double.parseDouble(m.group(1));
        long bytes =
            (long) (v * Math.pow(1024, List.of("B", "KiB", "MiB", "GiB").indexOf(m.group(2))));
        fetches
            .computeIfAbsent(
                mode.name() + "|" + rtt + (window == null ? "" : "|" + window),
                k -> new ArrayList<>())
            .add(new long[] {bytes, Long.parseLong(m.group(3).replace(",", ""))});
      }
    }
    p.waitFor(60, TimeUnit.SECONDS);
    return secs;
  }

  private void print() throws Exception {
    long image =
        Long.parseLong(FsBench.sh("du -sb --apparent-size " + dataset() + " | cut -f1").strip());
    StringBuilder out = new StringBuilder();
    out.append("Date ")
        .append(Instant.now())
        .append("; ")
        .append(reps)
        .append(" repetitions; RTT emulated by LatencyProxy")
        .append(
            " (delay RTT/2 each way, a new connection costs one extra RTT), bandwidth capped at ")
        .append(mbps)
        .append(" Mbit/s per direction, shared by all connections; image ")
        .append(image / 1_000_000)
        .append(" MB.\n\n");
    out.append(
            "| RTT | pull + extract + run (s) | lazy, no prefetch (s) | of which mount ready (s) | lazy + trace (s) | speed-up, no prefetch | speed-up, trace | GETs (no prefetch / trace) | fetched | share of image |\n")
        .append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int rtt : rtts) {
      List<Double> pull = samples.get("pull+extract|" + rtt);
      List<Double> lazy = samples.get("lazy|" + rtt);
      List<Double> traced = samples.get("trace|" + rtt);
      List<Double> ready = samples.get("ready|" + rtt);
      long[] plainF = medianFetch("PLAIN|" + rtt);
      long[] traceF = medianFetch("TRACE|" + rtt);
      out.append(
          String.format(
              Locale.ROOT,
              "| %d ms | %s | %s | %.3f | %s | %.1fx | %.1fx | %d / %d | %.1f MiB | %.2f%% |%n",
              rtt,
              Samples.spread(pull, "%.2f"),
              Samples.spread(lazy, "%.3f"),
              Samples.median(ready),
              Samples.spread(traced, "%.3f"),
              Samples.median(pull) / Samples.median(lazy),
              Samples.median(pull) / Samples.median(traced),
              plainF[1],
              traceF[1],
              plainF[0] / 1048576.0,
              100.0 * plainF[0] / image));
    }
    out.append(
            "\nWith repacking, against the floor (a fully warm host: index pulled, every chunk the start reads in")
        .append(" the disk cache and the page cache, a new mount process):\n\n")
        .append(
            "| RTT | no prefetch (s) | trace (s) | trace + optimize (s) | warm floor (s) | trace + optimize / floor | GETs: none / trace / optimized |\n")
        .append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int rtt : rtts) {
      List<Double> lazy = samples.get("lazy|" + rtt);
      List<Double> traced = samples.get("trace|" + rtt);
      List<Double> opt = samples.get("opt|" + rtt);
      List<Double> warm = samples.get("warm|" + rtt);
      out.append(
          String.format(
              Locale.ROOT,
              "| %d ms | %.3f | %.3f | %s | %s | %.2fx | %d / %d / %d |%n",
              rtt,
              Samples.median(lazy),
              Samples.median(traced),
              Samples.spread(opt, "%.3f"),
              Samples.spread(warm, "%.3f"),
              Samples.median(opt) / Samples.median(warm),
              medianFetch("PLAIN|" + rtt)[1],
              medianFetch("TRACE|" + rtt)[1],
              medianFetch("OPTIMIZED|" + rtt)[1]));
    }
    if (!windows.isEmpty()) {
      out.append(
              "\nWhat a lazy start moves, by neighbour window (--window): the index on the wire"
                  + " (zstd), the trace, and the chunks the start fetched; medians (MB = 10^6 bytes)."
                  + " Index of bench:1 ")
          .append(mb(wire.get("index|bench:1")))
          .append(", of bench:opt ")
          .append(mb(wire.get("index|bench:opt")))
          .append("; trace ")
          .append(mb(wire.get("trace|bench:1")))
          .append(".\n\n")
          .append("| RTT | window | mode | time (s) | chunks fetched | GETs | total moved |\n")
          .append("| ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
      for (int rtt : rtts) {
        for (String w : windows) {
          for (String[] m :
              new String[][] {
                {"lazy", "PLAIN", "no prefetch", "bench:1", ""},
                {"trace", "TRACE", "trace", "bench:1", "t"},
                {"opt", "OPTIMIZED", "trace + optimize", "bench:opt", "t"}
              }) {
            long[] f = medianFetch(m[1] + "|" + rtt + "|" + w);
            long total =
                f[0] + wire.get("index|" + m[3]) + (m[4].isEmpty() ? 0 : wire.get("trace|" + m[3]));
            out.append(
                String.format(
                    Locale.ROOT,
                    "| %d ms | %s | %s | %s | %s | %d | %s |%n",
                    rtt,
                    w,
                    m[2],
                    Samples.spread(samples.get(m[0] + "|" + rtt + "|" + w), "%.3f"),
                    mb(f[0]),
                    f[1],
                    mb(total)));
          }
        }
      }
    }
    if (!sequential) {
      Files.writeString(work.resolve("remote-report.md"), out);
      System.out.println(out);
      return;
    }
    out.append(
            "\nCold sequential read of the 1 GiB file through the lazy mount (read time only; empty caches):\n\n")
        .append("| RTT | seconds | MB/s | GETs |\n| ---: | ---: | ---: | ---: |\n");
    for (int rtt : rtts) {
      List<Double> s = samples.get("seq|" + rtt);
      out.append(
          String.format(
              Locale.ROOT,
              "| %d ms | %s | %.0f | %d |%n",
              rtt,
              Samples.spread(s, "%.2f"),
              (1L << 30) / 1e6 / Samples.median(s),
              medianFetch("SEQUENTIAL|" + rtt)[1]));
    }
    Files.writeString(work.resolve("remote-report.md"), out);
    System.out.println(out);
  }

  private static String mb(long bytes) {
    return String.format(Locale.ROOT, "%.2f MB", bytes / 1e6);
  }

  /** Median (by GETs) of {bytes, GETs} over the mounts of one kind. */
  private long[] medianFetch(String key) {
    List<long[]> f = fetches.getOrDefault(key, List.of(new long[] {0, 0}));
    return f.stream().sorted((a, b) -> Long.compare(a[1], b[1])).toList().get(f.size() / 2);
  }

  private static void dropCaches() throws Exception {
    FsBench.sh("sync && echo 3 > /proc/sys/vm/drop_caches");
  }

  private static void log(String s) {
    System.err.println("[remotebench] " + s);
  }
}
