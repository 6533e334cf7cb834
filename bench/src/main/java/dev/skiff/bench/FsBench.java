package dev.skiff.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The casfs filesystem benchmark: the same tree served by a native directory (the floor),
 * squashfuse and squashfuse_ll (a C FUSE peer) and skiff mounts, measured side by side.
 *
 * <p>Per repetition, per workload, per variant, interleaved: a fresh mount (a new process), then
 * <b>cold</b> (page cache dropped), <b>warm</b> (again at once), <b>cold2</b> (page cache dropped,
 * daemon still up). Workloads: lstat of 10,000 files; open+read+close of 2,000 small files;
 * sequential read of a 1 GiB file; {@code python3 -S -c 'import json, email.mime.text, http.client,
 * xml.dom.minidom, asyncio, decimal, sqlite3'} with PYTHONHOME on the variant. Also import
 * throughput against {@code tar -x} of the same layer, and the dedup of a second image. Needs root
 * (mounts, drop_caches).
 *
 * <pre>
 * tools/setup && java $(sed -n 's/^skiff.jvm.flags=//p' jvm.properties) -cp bench/target/skiff-bench.jar \
 *     dev.skiff.bench.FsBench [--work /var/tmp/skiff-bench] [--reps 5] [--variants native,squashfuse,...]
 * </pre>
 *
 * Prints a Markdown report (also written to WORK/report.md).
 */
public final class FsBench {
  private static final String PY = "/usr/bin/python3";
  private static final String IMPORTS =
      "import json, email.mime.text, http.client, xml.dom.minidom, asyncio, decimal, sqlite3";
  private static final List<String> WORKLOADS = List.of("stat", "small", "seq", "python");
  private static final List<String> PHASES = List.of("cold", "warm", "cold2");

  private final Path work;
  private final Path repo;
  private final int reps;
  private final List<String> variants;
  private final Path workload;
  private final Map<String, List<Double>> samples = new LinkedHashMap<>();
  private final Map<String, List<Long>> fetched = new LinkedHashMap<>();
  private final StringBuilder report = new StringBuilder();

  private FsBench(Path work, Path repo, int reps, List<String> variants) throws IOException {
    this.work = work;
    this.repo = repo;
    this.reps = reps;
    this.variants = variants;
    Files.createDirectories(work);
    this.workload = work.resolve("workload.py");
    // A private copy of the CLI, so that a rebuild during a run cannot change what is measured.
    Files.copy(
        repo.resolve("tools/target/skiff.jar"),
        work.resolve("skiff.jar"),
        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    try (var in = FsBench.class.getResourceAsStream("/workload.py")) {
      Files.copy(in, workload, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
  }

  public static void main(String[] args) throws Exception {
    Path work = Path.of("/var/tmp/skiff-bench");
    int reps = 5;
    List<String> variants =
        List.of("native", "squashfuse", "squashfuse_ll", "skiff", "skiff-1thread");
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--work" -> work = Path.of(args[++i]);
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        case "--variants" -> variants = List.of(args[++i].split(","));
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    Path repo = Path.of(System.getProperty("skiff.repo", ".")).toAbsolutePath().normalize();
    FsBench b = new FsBench(work, repo, reps, variants);
    b.prepare();
    b.importBench();
    b.run();
    b.print();
  }

  // ---- dataset ---------------------------------------------------------------------------------

  private Path dataset() {
    return work.resolve("dataset");
  }

  private void prepare() throws Exception {
    Path ds = dataset();
    if (!Files.exists(work.resolve("dataset.done"))) {
      log("building the dataset in " + ds);
      sh(
          "rm -rf "
              + ds
              + " && mkdir -p "
              + ds
              + "/usr/lib "
              + ds
              + "/big && cp -a /usr/lib/python3.11 "
              + ds
              + "/usr/lib/");
      SplittableRandom rnd = new SplittableRandom(42);
      List<String> all = new ArrayList<>();
      for (int d = 0; d < 100; d++) {
        Path dir = Files.createDirectories(ds.resolve(String.format("files/d%02d", d)));
        for (int f = 0; f < 100; f++) {
          byte[] b = new byte[200 + rnd.nextInt(16_000)];
          rnd.nextBytes(b);
          String name = String.format("f%05d", d * 100 + f);
          Files.write(dir.resolve(name), b);
          all.add(String.format("files/d%02d/%s", d, name));
        }
      }
      Files.write(work.resolve("stat.list"), all);
      List<String> small = new ArrayList<>();
      for (int i = 0; i < all.size(); i += 5) {
        small.add(all.get(i));
      }
      Files.write(work.resolve("small.list"), small);
      byte[] block = new byte[32 << 20];
      try (OutputStream o = Files.newOutputStream(ds.resolve("big/1g.bin"))) {
        for (int i = 0; i < 32; i++) {
          rnd.nextBytes(block);
          o.write(block);
        }
      }
      log("packing the layer (tar | gzip -1) and the squashfs image");
      sh("tar -C " + ds + " -cf - . | gzip -1 > " + work.resolve("layer.tar.gz"));
      sh(
          "mksquashfs "
              + ds
              + " "
              + work.resolve("dataset.sqfs")
              + " -comp zstd -noappend -quiet -no-progress");
      sh(
          "rm -rf "
              + work.resolve("v2")
              + " && cp -al "
              + ds
              + " "
              + work.resolve("v2")
              + " && mkdir -p "
              + work.resolve("v2/app")
              + " && head -c 20000000 /dev/urandom > "
              + work.resolve("v2/app/new.bin"));
      Files.writeString(work.resolve("dataset.done"), Instant.now().toString());
    }
  }

  // ---- import ----------------------------------------------------------------------------------

  private Path store() {
    return work.resolve("store");
  }

  private void importBench() throws Exception {
    long logical = Long.parseLong(sh("du -sb --apparent-size " + dataset() + " | cut -f1").strip());
    List<Double> tar = new ArrayList<>();
    List<Double> skiff = new ArrayList<>();
    for (int r = 0; r < Math.min(reps, 3); r++) {
      sh("rm -rf " + work.resolve("untar") + " && mkdir -p " + work.resolve("untar"));
      dropCaches();
      tar.add(
          timed(
              "tar -xzf "
                  + work.resolve("layer.tar.gz")
                  + " -C "
                  + work.resolve("untar")
                  + " && sync"));
      sh("rm -rf " + store());
      dropCaches();
      skiff.add(
          timed(
              skiffCmd("import", "-q " + work.resolve("layer.tar.gz") + " bench:1")
                  + " > /dev/null && sync"));
    }
    sh("rm -rf " + work.resolve("untar"));
    String v2 = sh(skiffCmd("import", work.resolve("v2") + " bench:2"));
    report
        .append("### Import (")
        .append(Math.min(reps, 3))
        .append(" runs, cold page cache)\n\n")
        .append(
            "| variant | median s | min-max s | MB/s of image | vs tar -x |\n| --- | ---: | ---: | ---: | ---: |\n");
    double tarMed = Samples.median(tar);
    for (var e :
        Map.of("tar -xzf (floor)", tar, "skiff import", skiff).entrySet().stream()
            .sorted(Map.Entry.comparingByKey((a, b) -> a.startsWith("tar") ? -1 : 1))
            .toList()) {
      double m = Samples.median(e.getValue());
      report.append(
          String.format(
              Locale.ROOT,
              "| %s | %.2f | %.2f-%.2f | %.0f | %.2fx |%n",
              e.getKey(),
              m,
              Samples.min(e.getValue()),
              Samples.max(e.getValue()),
              logical / 1e6 / m,
              m / tarMed));
    }
    report
        .append("\nImage: ")
        .append(logical / 1_000_000)
        .append(" MB logical (Python stdlib, 10,000 small files, 1 GiB random).")
        .append(
            " `skiff import` includes JVM start; `tar -x` writes every byte, skiff writes new chunks once.\n\n")
        .append(
            "Second image sharing the base (the same tree plus a 20 MB app file, imported from a directory):\n\n```\n")
        .append(v2.strip())
        .append("\n\n")
        .append(sh(skiffCmd("images", "")).strip())
        .append("\n```\n\n");
  }

  // ---- mounts
  // ------------------------------------------------------------------------------------

  private interface Mount extends AutoCloseable {
    Path root();

    @Override
    void close() throws Exception;
  }

  private Mount mount(String variant) throws Exception {
    if (variant.equals("native")) {
      return new Mount() {
        public Path root() {
          return dataset();
        }

        public void close() {}
      };
    }
    Path mp = Files.createDirectories(work.resolve("mnt-" + variant));
    if (variant.startsWith("squashfuse")) {
      sh(variant + " " + work.resolve("dataset.sqfs") + " " + mp);
      return new Mount() {
        public Path root() {
          return mp;
        }

        public void close() throws Exception {
          sh("umount " + mp);
        }
      };
    }
    String threads = variant.equals("skiff-1thread") ? " --threads 1" : "";
    Process p =
        new ProcessBuilder("bash", "-c", skiffCmd("mount", threads + " bench:1 " + mp))
            .redirectErrorStream(true)
            .start();
    BufferedReader r =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    String line = r.readLine();
    if (line == null || !line.startsWith("mounted")) {
      throw new IOException("skiff mount failed: " + line);
    }
    return new Mount() {
      public Path root() {
        return mp;
      }

      public void close() throws Exception {
        sh(skiffCmd("umount", mp.toString()));
        String l;
        while ((l = r.readLine()) != null) {
          if (l.startsWith("unmounted")) {
            var m =
                java.util.regex.Pattern.compile("from the store \\(([^ ]+ [^ ]+) in").matcher(l);
            if (m.find()) {
              fetched
                  .computeIfAbsent(variant + "/" + current, k -> new ArrayList<>())
                  .add(parseBytes(m.group(1)));
            }
          }
        }
        p.waitFor(60, TimeUnit.SECONDS);
      }
    };
  }

  private String current;

  private void run() throws Exception {
    for (int rep = 1; rep <= reps; rep++) {
      for (String w : WORKLOADS) {
        current = w;
        for (String v : variants) {
          try (Mount m = mount(v)) {
            for (String phase : PHASES) {
              if (!phase.equals("warm")) {
                dropCaches();
              }
              double s = runWorkload(w, m.root());
              samples.computeIfAbsent(w + "|" + phase + "|" + v, k -> new ArrayList<>()).add(s);
            }
          }
        }
        log(String.format(Locale.ROOT, "rep %d/%d %s done", rep, reps, w));
      }
    }
  }

  private double runWorkload(String w, Path root) throws Exception {
    return switch (w) {
      case "stat" ->
          Double.parseDouble(
              sh(PY + " " + workload + " stat " + root + " " + work.resolve("stat.list")).strip());
      case "small" ->
          Double.parseDouble(
              sh(PY + " " + workload + " small " + root + " " + work.resolve("small.list"))
                  .strip());
      case "seq" ->
          Double.parseDouble(sh(PY + " " + workload + " seq " + root + " big/1g.bin").strip());
      case "python" -> timed("PYTHONHOME=" + root + "/usr " + PY + " -S -c '" + IMPORTS + "'");
      default -> throw new IllegalArgumentException(w);
    };
  }

  // ---- report
  // ------------------------------------------------------------------------------------

  private void print() throws Exception {
    String machine =
        sh("echo \"$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r)\"")
            .strip();
    StringBuilder out = new StringBuilder();
    out.append("Date ")
        .append(Instant.now())
        .append("; commit ")
        .append(sh("cd " + repo + " && git rev-parse --short HEAD").strip())
        .append("; ")
        .append(machine)
        .append("; JDK ")
        .append(Runtime.version())
        .append("; ")
        .append(reps)
        .append(" repetitions, variants interleaved.\n\n");
    out.append(report);
    for (String w : WORKLOADS) {
      out.append("### ")
          .append(
              switch (w) {
                case "stat" -> "lstat of 10,000 files";
                case "small" -> "open+read+close of 2,000 small files (200 B - 16 KB)";
                case "seq" -> "sequential read of a 1 GiB file (1 MiB reads)";
                default -> "python3 -S -c '" + IMPORTS + "' (whole process)";
              })
          .append(
              "\n\nmedian seconds (min-max), and the median as a multiple of the native directory's in the same phase\n\n");
      out.append("| variant |");
      PHASES.forEach(p -> out.append(' ').append(p).append(" |"));
      out.append("\n| --- |");
      PHASES.forEach(p -> out.append(" ---: |"));
      out.append('\n');
      for (String v : variants) {
        out.append("| ").append(v).append(" |");
        for (String p : PHASES) {
          List<Double> s = samples.get(w + "|" + p + "|" + v);
          List<Double> floor = samples.get(w + "|" + p + "|native");
          if (s == null) {
            out.append(" - |");
            continue;
          }
          out.append(
              String.format(
                  Locale.ROOT,
                  " %s (%s-%s)%s |",
                  fmt(Samples.median(s)),
                  fmt(Samples.min(s)),
                  fmt(Samples.max(s)),
                  floor == null
                      ? ""
                      : String.format(
                          Locale.ROOT, " **%.2fx**", Samples.median(s) / Samples.median(floor))));
        }
        out.append('\n');
      }
      List<Long> f = fetched.get("skiff/" + w);
      if (f != null) {
        out.append(
            String.format(
                Locale.ROOT,
                "%nskiff fetched %s from its store per mount (all three phases), median.%n",
                human(f.stream().sorted().toList().get(f.size() / 2))));
      }
      out.append('\n');
    }
    Files.writeString(work.resolve("report.md"), out);
    System.out.println(out);
  }

  // ---- helpers
  // -----------------------------------------------------------------------------------

  /** This JVM's binary and its {@code --} flags (those jvm.properties gives), for child JVMs. */
  static List<String> jvm() {
    List<String> cmd = new ArrayList<>();
    cmd.add(ProcessHandle.current().info().command().orElse("java"));
    cmd.addAll(
        java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
            .filter(a -> a.startsWith("--"))
            .toList());
    return cmd;
  }

  /**
   * The skiff CLI of the work tree at {@code repo} as tools/skiff starts it (its AOT cache, see
   * tools/lib.sh), straight from the built jar: the launcher would rebuild if sources changed
   * mid-run.
   */
  static List<String> skiffCli(Path repo) {
    List<String> cmd = jvm();
    Path aot = repo.resolve("tools/target/skiff.aot");
    if (Files.exists(aot)) {
      cmd.addAll(List.of("-XX:AOTCache=" + aot, "-Xlog:aot=off", "-Xlog:cds=off"));
    }
    cmd.addAll(
        List.of(
            "-XX:+UseParallelGC",
            "-Xss2m",
            "-jar",
            repo.resolve("tools/target/skiff.jar").toString()));
    return cmd;
  }

  /**
   * The skiff CLI from the built jar (not the launcher, which would rebuild if sources changed
   * mid-run).
   */
  private String skiffCmd(String command, String args) {
    return String.join(" ", jvm())
        + " -XX:+UseParallelGC -Xss2m -jar "
        + work.resolve("skiff.jar")
        + " "
        + command
        + (command.equals("umount") ? "" : " --store " + store())
        + " "
        + args;
  }

  private static void dropCaches() throws Exception {
    sh("sync && echo 3 > /proc/sys/vm/drop_caches");
  }

  private static double timed(String cmd) throws Exception {
    long t = System.nanoTime();
    sh(cmd);
    return (System.nanoTime() - t) / 1e9;
  }

  /** Runs {@code cmd} with bash and returns its output; fails with the output if it fails. */
  public static String sh(String cmd) throws Exception {
    Process p =
        new ProcessBuilder("bash", "-c", cmd)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(30, TimeUnit.MINUTES) || p.exitValue() != 0) {
      throw new IOException("failed (" + p.exitValue() + "): " + cmd + "\n" + out);
    }
    return out;
  }

  private static void log(String s) {
    System.err.println("[fsbench] " + s);
  }

  private static String fmt(double s) {
    return s < 0.1
        ? String.format(Locale.ROOT, "%.1f ms", s * 1000)
        : String.format(Locale.ROOT, "%.3f s", s);
  }

  private static long parseBytes(String s) {
    String[] p = s.split(" ");
    double v = Double.parseDouble(p[0]);
    int i = Arrays.asList("B", "KiB", "MiB", "GiB", "TiB").indexOf(p[1]);
    return (long) (v * Math.pow(1024, i));
  }

  private static String human(long b) {
    return b < (1 << 20)
        ? (b >> 10) + " KiB"
        : String.format(Locale.ROOT, "%.1f MiB", b / 1048576.0);
  }
}
