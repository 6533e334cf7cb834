package dev.skiff.runtime;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * gVisor's {@code runsc}: where it is, which release (Debian 12 has 2022-12 with ptrace and kvm;
 * bookworm-backports has 2024-07 with systrap too), which platform to use, and the flags every call
 * about one sandbox must carry. Both releases are driven the same way; where their flags differ
 * (the overlay medium) this class speaks each one's dialect.
 */
public final class Runsc {
  private static final Logger log = LoggerFactory.getLogger(Runsc.class);
  private static final Pattern VERSION = Pattern.compile("runsc version \\S*?(\\d{8})");

  /** systrap arrived in gVisor in 2023; releases before it have ptrace and kvm only. */
  private static final int SYSTRAP_SINCE = 20230601;

  private static final int NVPROXY_SINCE = 20240101;

  private static final Path BOOT_ID = Path.of("/proc/sys/kernel/random/boot_id");

  /** How the sandbox's kernel intercepts the application's system calls. */
  public enum Platform {
    PTRACE,
    SYSTRAP,
    KVM;

    public String flag() {
      return name().toLowerCase(Locale.ROOT);
    }

    public static Platform parse(String s) {
      try {
        return valueOf(s.trim().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            "unknown platform '" + s + "': want auto, systrap, ptrace or kvm");
      }
    }
  }

  private final Path binary;
  private final String version;
  private final int date;
  private final Path root;
  private final Platform platform;
  private final String platformReason;

  private Runsc(
      Path binary, String version, int date, Path root, Platform platform, String platformReason) {
    this.binary = binary;
    this.version = version;
    this.date = date;
    this.root = root;
    this.platform = platform;
    this.platformReason = platformReason;
  }

  /** A runsc of a known release, without asking the binary (tests of the flags per release). */
  static Runsc of(Path binary, String version, int date, Path root, Platform platform) {
    return new Runsc(binary, version, date, root, platform, "given");
  }

  /**
   * Finds runsc ({@code explicit}, else $SKIFF_RUNSC, else the PATH) and chooses the platform:
   * {@code requested} when given ("auto" or null: kvm where /dev/kvm works, else systrap where this
   * runsc has it, else ptrace). The kvm probe runs once per runsc release and boot.
   */
  public static Runsc locate(Path explicit, Path root, String requested) throws IOException {
    Path bin = explicit != null ? explicit : findBinary();
    String out = run(List.of(bin.toString(), "--version"), Duration.ofSeconds(10)).output();
    Matcher m = VERSION.matcher(out);
    if (!m.find()) {
      throw new IOException(bin + " --version printed no release date: " + out.strip());
    }
    String version = out.lines().findFirst().orElse("").replace("runsc version ", "").strip();
    int date = Integer.parseInt(m.group(1));
    Files.createDirectories(root);
    Runsc probe = new Runsc(bin, version, date, root, Platform.PTRACE, "");
    if (requested != null && !requested.isBlank() && !requested.equalsIgnoreCase("auto")) {
      Platform p = Platform.parse(requested);
      if (p == Platform.SYSTRAP && !probe.hasSystrap()) {
        throw new IOException(
            "runsc "
                + version
                + " has no systrap platform (it arrived in 2023; Debian's"
                + " bookworm-backports has runsc 2024-07): choose the ptrace platform");
      }
      return new Runsc(bin, version, date, root, p, "requested");
    }
    if (probe.kvmWorks()) {
      return new Runsc(bin, version, date, root, Platform.KVM, "/dev/kvm works");
    }
    return probe.hasSystrap()
        ? new Runsc(bin, version, date, root, Platform.SYSTRAP, "no working /dev/kvm")
        : new Runsc(
            bin,
            version,
            date,
            root,
            Platform.PTRACE,
            "no working /dev/kvm; runsc " + version + " has no systrap");
  }

  private static Path findBinary() throws IOException {
    String env = System.getenv("SKIFF_RUNSC");
    if (env != null && !env.isBlank()) {
      return Path.of(env);
    }
    for (String dir :
        System.getenv().getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin").split(":")) {
      Path p = Path.of(dir.isEmpty() ? "." : dir, "runsc");
      if (Files.isExecutable(p)) {
        return p;
      }
    }
    for (String p : List.of("/usr/sbin/runsc", "/usr/local/sbin/runsc", "/usr/bin/runsc")) {
      if (Files.isExecutable(Path.of(p))) {
        return Path.of(p);
      }
    }
    throw new IOException(
        "runsc (gVisor) not found: apt-get install runsc (or -t bookworm-backports runsc"
            + " for 2024-07 with systrap), or set SKIFF_RUNSC");
  }

  public Path binary() {
    return binary;
  }

  public String version() {
    return version;
  }

  public Platform platform() {
    return platform;
  }

  /** Why {@link #platform()} was chosen, for {@code skiff run --verbose} and reports. */
  public String platformReason() {
    return platformReason;
  }

  /** runsc's state directory ({@code --root}) for Skiff's sandboxes. */
  public Path root() {
    return root;
  }

  public boolean hasSystrap() {
    return date >= SYSTRAP_SINCE;
  }

  /**
   * Whether this runsc has nvproxy, gVisor's proxy of NVIDIA's driver, and can list its drivers.
   */
  public boolean hasNvproxy() {
    return date >= NVPROXY_SINCE;
  }

  /**
   * The NVIDIA driver versions this runsc's nvproxy accepts ({@code runsc nvproxy
   * list-supported-drivers}); empty for a runsc without nvproxy.
   */
  public List<String> nvproxyDrivers() throws IOException {
    if (!hasNvproxy()) {
      return List.of();
    }
    Result r =
        run(
            List.of(binary.toString(), "nvproxy", "list-supported-drivers"),
            Duration.ofSeconds(20));
    if (r.exit() != 0) {
      throw new IOException("runsc nvproxy list-supported-drivers failed: " + r.output().strip());
    }
    return r.output().lines().map(String::strip).filter(l -> l.matches("[0-9.]+")).toList();
  }

  /**
   * runc, for sandboxes that run without gVisor ({@link SandboxOptions#runc()}): {@code
   * $SKIFF_RUNC}, else the PATH.
   *
   * @throws IllegalStateException if there is none
   */
  static Path runc() {
    String explicit = System.getenv("SKIFF_RUNC");
    if (explicit != null && !explicit.isBlank()) {
      return Path.of(explicit);
    }
    for (String d : System.getenv().getOrDefault("PATH", "/usr/bin:/usr/sbin").split(":")) {
      Path p = Path.of(d, "runc");
      if (Files.isExecutable(p)) {
        return p;
      }
    }
    throw new IllegalStateException(
        "a sandbox without gVisor runs under runc, which is not installed (Debian: apt-get install"
            + " runc)");
  }

  /** Where runc keeps the state of this home's sandboxes that run under it. */
  Path runcRoot() {
    return root.resolveSibling("runc");
  }

  /** The global flags of a call about a sandbox with these options. */
  List<String> command(SandboxOptions o, Path logDir, String... subcommand) {
    if (o.runc()) {
      List<String> cmd = new ArrayList<>(List.of(runc().toString(), "--root=" + runcRoot()));
      if (logDir != null) {
        cmd.add("--log=" + logDir.resolve("runc.log"));
      }
      cmd.addAll(List.of(subcommand));
      return cmd;
    }
    List<String> cmd = new ArrayList<>();
    cmd.add(binary.toString());
    cmd.add("--root=" + root);
    cmd.add("--platform=" + platform.flag());
    cmd.add("--network=" + (o.network() ? "host" : "none"));
    // writes captured for a build go through to the host overlay's upper directory
    cmd.add(
        o.captureWrites() != null
            ? "--overlay2=none"
            : "--overlay2=root:" + overlayMedium(o.scratch()));
    if (!o.devices().isEmpty()) {
      if (!hasNvproxy()) {
        throw new IllegalStateException(
            "runsc "
                + version
                + " has no nvproxy, which GPUs in a sandbox need (Debian's bookworm-backports"
                + " has runsc 2024-07 with it)");
      }
      cmd.add("--nvproxy=true");
    }
    if (logDir != null) {
      cmd.add("--log=" + logDir.resolve("runsc.log"));
      cmd.add("--panic-log=" + logDir.resolve("panic.log"));
    }
    cmd.addAll(List.of(subcommand));
    return cmd;
  }

  /**
   * Flags for checkpoint: uncompressed where this runsc can say so (restore then maps the pages
   * file instead of inflating it; measured in bench/RESULTS.md).
   */
  List<String> checkpointFlags() {
    return date >= SYSTRAP_SINCE ? List.of("--compression=none") : List.of();
  }

  /** {@link #plain(String...)} for a sandbox under runc ({@code runc}) or gVisor. */
  List<String> plain(boolean runc, String... subcommand) {
    if (!runc) {
      return plain(subcommand);
    }
    List<String> cmd = new ArrayList<>(List.of(runc().toString(), "--root=" + runcRoot()));
    cmd.addAll(List.of(subcommand));
    return cmd;
  }

  /** The flags of a call that only names a sandbox (kill, delete, state, list). */
  List<String> plain(String... subcommand) {
    List<String> cmd = new ArrayList<>(List.of(binary.toString(), "--root=" + root));
    cmd.addAll(List.of(subcommand));
    return cmd;
  }

  private String overlayMedium(Path scratch) {
    if (scratch == null) {
      return "memory";
    }
    // 2022-12 takes a directory path; later releases say dir=PATH (and have "self").
    return (date >= 20230601 ? "dir=" : "") + scratch.toAbsolutePath();
  }

  /** What a short runsc call printed and returned. */
  record Result(int exit, String output) {}

  /** Runs a short command (stdout and stderr together), killing it after {@code timeout}. */
  static Result run(List<String> cmd, Duration timeout) throws IOException {
    Path out = Files.createTempFile("skiff-runsc-", ".out");
    try {
      Process p =
          new ProcessBuilder(cmd)
              .redirectErrorStream(true)
              .redirectOutput(out.toFile())
              .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
              .start();
      boolean done;
      try {
        done = p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        p.destroyForcibly();
        Thread.currentThread().interrupt();
        throw new IOException("interrupted: " + String.join(" ", cmd));
      }
      if (!done) {
        p.destroyForcibly();
        throw new IOException(
            String.join(" ", cmd) + " did not finish within " + timeout.toSeconds() + " s");
      }
      return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
    } finally {
      Files.deleteIfExists(out);
    }
  }

  /**
   * Whether the kvm platform runs a sandbox here. /dev/kvm can exist and still not work (nested
   * virtualization without the features gVisor needs: there the sandbox never starts), so this
   * starts one, once per runsc release, and remembers the answer.
   */
  private boolean kvmWorks() throws IOException {
    Path dev = Path.of("/dev/kvm");
    if (!Files.isReadable(dev) || !Files.isWritable(dev)) {
      return false;
    }
    // One answer per machine boot and runsc release, shared by every Skiff home on the host.
    Path memo =
        Path.of(
            System.getProperty("java.io.tmpdir"),
            "skiff-kvm-probe-" + System.getProperty("user.name"));
    String bootId = Files.exists(BOOT_ID) ? Files.readString(BOOT_ID).strip() : "";
    String key = version + " " + System.getProperty("os.version") + " " + bootId;
    if (Files.isRegularFile(memo)) {
      List<String> lines = Files.readAllLines(memo);
      if (lines.size() == 2 && lines.get(0).equals(key)) {
        return lines.get(1).equals("works");
      }
    }
    Path probeRoot = Files.createTempDirectory(root, "kvm-probe-");
    boolean works;
    try {
      Result r =
          run(
              List.of(
                  binary.toString(),
                  "--root=" + probeRoot,
                  "--platform=kvm",
                  "--network=none",
                  "do",
                  "/bin/true"),
              Duration.ofSeconds(3));
      works = r.exit() == 0;
      if (!works) {
        log.debug("kvm probe failed: {}", r.output());
      }
    } catch (IOException timedOut) {
      works = false;
    } finally {
      forceDeleteAll(probeRoot);
    }
    Files.writeString(memo, key + "\n" + (works ? "works" : "fails") + "\n");
    return works;
  }

  /** Deletes every container under a runsc root, then the root. */
  private void forceDeleteAll(Path dir) throws IOException {
    Result list =
        run(List.of(binary.toString(), "--root=" + dir, "list", "-quiet"), Duration.ofSeconds(10));
    for (String id : list.output().strip().split("\\s+")) {
      if (!id.isEmpty()) {
        run(
            List.of(binary.toString(), "--root=" + dir, "delete", "--force", id),
            Duration.ofSeconds(10));
      }
    }
    run(List.of("rm", "-rf", dir.toString()), Duration.ofSeconds(10));
  }
}
