package dev.skiff.runtime;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.digest.Digest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One gVisor sandbox on a casfs mount of an image. Made by {@link SandboxRuntime#run}, {@link
 * SandboxRuntime#create} or {@link SandboxRuntime#restore}; {@link #close()} kills whatever still
 * runs in it, deletes it in runsc and removes its state directory. The image mount is the
 * runtime's, shared with its other sandboxes (see {@link ImageRoots}).
 */
public final class Sandbox implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Sandbox.class);
  private static final ScheduledExecutorService TIMERS =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "skiff-sandbox-timeout");
            t.setDaemon(true);
            return t;
          });

  enum Kind {
    RUN,
    WARM,
    RESTORED
  }

  /** How to start a process with {@link #exec}: overrides of the image's defaults. */
  public record Exec(List<String> env, String workdir, String user, boolean stdin) {
    public Exec {
      env = List.copyOf(env);
    }

    public static Exec defaults() {
      return new Exec(List.of(), null, null, false);
    }

    public Exec withStdin(boolean on) {
      return new Exec(env, workdir, user, on);
    }

    public Exec withEnv(String nameEqualsValue) {
      List<String> e = new ArrayList<>(env);
      e.add(nameEqualsValue);
      return new Exec(e, workdir, user, stdin);
    }
  }

  private final SandboxRuntime rt;
  private final String id;
  private final Path dir;
  private final Path bundle;
  private final Path rootfs;
  private final SandboxOptions options;
  private final Kind kind;
  private final AtomicInteger execs = new AtomicInteger();
  private ImageRef imageRef;
  private Digest imageDigest;

  /** What runsc sees as the root: the casfs mount, an overlay over it, or a host directory. */
  private Path root;

  private ImageConfig imageConfig;
  private SandboxProcess main;
  private ScheduledFuture<?> timer;
  private volatile boolean timedOut;
  private boolean closed;

  private Sandbox(SandboxRuntime rt, String id, SandboxOptions options, Kind kind) {
    this.rt = rt;
    this.id = id;
    this.dir = rt.sandboxDir(id);
    this.bundle = dir.resolve("bundle");
    this.rootfs = bundle.resolve("rootfs");
    this.options = options;
    this.kind = kind;
  }

  static Sandbox launch(
      SandboxRuntime rt,
      String id,
      String image,
      SandboxOptions o,
      Kind kind,
      List<String> args,
      boolean stdin,
      Snapshot snapshot)
      throws IOException {
    rt.requireRoot();
    Sandbox sb = new Sandbox(rt, id, o, kind);
    ReadOnlyBinds readOnly = new ReadOnlyBinds(sb.dir.resolve("ro"));
    Files.createDirectories(sb.rootfs);
    Files.createDirectories(sb.logs());
    SandboxRecord.forThisProcess(
            id,
            image,
            kind == Kind.WARM ? List.of("(warm)") : args,
            kind.name().toLowerCase(java.util.Locale.ROOT))
        .write(sb.dir);
    try {
      // runsc's gofer creates each bind mount's target in the host's view of the root, which a
      // read-only casfs mount refuses: with binds, the root is an overlayfs over the mount whose
      // upper layer takes those (empty) targets. Sandbox writes still go to gVisor's overlay.
      boolean binds =
          kind == Kind.WARM || !o.volumes().isEmpty() || (snapshot != null && snapshot.hasBinds());
      Path lower;
      if (image.startsWith("/")) { // a host directory as the root, to compare with or to test
        lower = Path.of(image);
        if (!Files.isDirectory(lower)) {
          throw new IOException("no directory " + lower + " to use as the root");
        }
        sb.imageConfig = ImageConfig.defaults();
      } else {
        ImageRoots.Root r = rt.roots().acquire(image);
        lower = r.path();
        sb.imageRef = r.ref();
        sb.imageDigest = r.digest();
        sb.imageConfig = r.config();
      }
      if (binds) {
        HostOverlay.mount(lower, sb.dir.resolve("upper"), sb.dir.resolve("work"), sb.rootfs);
      }
      sb.root = binds ? sb.rootfs : lower;
      Runsc runsc = rt.runsc();
      if (snapshot != null) {
        snapshot.checkRestorable(sb.imageDigest, runsc);
        Files.write(sb.bundle.resolve("config.json"), snapshot.specFor(sb.root, readOnly));
        sb.main =
            sb.start(
                runsc.command(
                    o,
                    sb.logs(),
                    "restore",
                    "--image-path=" + snapshot.checkpointDir(),
                    "--bundle=" + sb.bundle,
                    id),
                stdin,
                "restored " + snapshot.name());
      } else {
        SandboxOptions withInit = o;
        OciSpec.Process p;
        if (kind == Kind.WARM) {
          withInit =
              o.toBuilder()
                  .volume(
                      new SandboxOptions.Volume(rt.initBinary(), InitBinary.PATH_IN_SANDBOX, true))
                  .build();
          p =
              new OciSpec.Process(
                  List.of(InitBinary.PATH_IN_SANDBOX),
                  sb.imageConfig.env(o.env()),
                  "/",
                  0,
                  0,
                  List.of());
        } else {
          p = OciSpec.process(sb.imageConfig, o, args, sb.root);
        }
        List<OciSpec.Bind> volumes = new ArrayList<>();
        for (SandboxOptions.Volume v : withInit.volumes()) {
          volumes.add(new OciSpec.Bind(v, v.readOnly() ? readOnly.add(v.source()) : v.source()));
        }
        Files.write(
            sb.bundle.resolve("config.json"),
            OciSpec.write(p, sb.root, withInit, volumes, "skiff", sb.cgroupsPath(o)));
        if (kind == Kind.RUN) {
          sb.main =
              sb.start(
                  runsc.command(o, sb.logs(), "run", "--bundle=" + sb.bundle, id),
                  stdin,
                  String.join(" ", p.args()));
        } else {
          // create's stdio becomes the init's: a file, never a pipe (a sandbox holding a pipe
          // open would keep a reader of it waiting for ever).
          sb.runsc(
              "create",
              runsc.command(o, sb.logs(), "create", "--bundle=" + sb.bundle, id),
              Duration.ofSeconds(60));
          sb.runsc("start", runsc.command(o, sb.logs(), "start", id), Duration.ofSeconds(30));
        }
      }
      if (o.timeout() != null) {
        sb.timer = TIMERS.schedule(sb::timeUp, o.timeout().toMillis(), TimeUnit.MILLISECONDS);
      }
      return sb;
    } catch (IOException | RuntimeException e) {
      sb.close();
      throw e;
    }
  }

  private String cgroupsPath(SandboxOptions o) {
    if (o.memoryBytes() == 0 && o.cpus() == 0) {
      return null;
    }
    Cgroups cg = rt.cgroups();
    if (o.memoryBytes() > 0 && !cg.memory()) {
      rt.config().notices().accept("--memory is not enforced: " + cg.why());
    }
    if (o.cpus() > 0 && !cg.cpu()) {
      rt.config().notices().accept("--cpus is not enforced: " + cg.why());
    }
    return (o.memoryBytes() > 0 && cg.memory()) || (o.cpus() > 0 && cg.cpu())
        ? Cgroups.path(id)
        : null;
  }

  private Path logs() {
    return dir.resolve("logs");
  }

  private SandboxProcess start(List<String> cmd, boolean stdin, String what) throws IOException {
    ProcessBuilder pb = new ProcessBuilder(cmd);
    if (!stdin) {
      pb.redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
    }
    return new SandboxProcess(pb.start(), stdin, what);
  }

  private void runsc(String what, List<String> cmd, Duration timeout) throws IOException {
    Runsc.Result r = Runsc.run(cmd, timeout);
    if (r.exit() != 0) {
      throw new IOException(
          "runsc "
              + what
              + " of sandbox "
              + id
              + " failed (exit "
              + r.exit()
              + "): "
              + r.output().strip()
              + runscLogTail());
    }
  }

  /** The last lines of runsc's own log, which say why a sandbox did not start. */
  private String runscLogTail() {
    try {
      Path f = logs().resolve("runsc.log");
      if (!Files.exists(f)) {
        return "";
      }
      List<String> lines = Files.readAllLines(f);
      List<String> warnings =
          lines.stream().filter(l -> l.startsWith("W") || l.startsWith("E")).toList();
      List<String> pick = warnings.isEmpty() ? lines : warnings;
      List<String> tail = pick.subList(Math.max(0, pick.size() - 5), pick.size());
      return "\n  runsc log (" + f + "):\n    " + String.join("\n    ", tail);
    } catch (IOException e) {
      return "";
    }
  }

  private void timeUp() {
    timedOut = true;
    try {
      kill();
    } catch (IOException e) {
      log.warn("sandbox {}: killing after its timeout: {}", id, e.toString());
    }
  }

  public String id() {
    return id;
  }

  /** The image the sandbox runs on; null for a host-directory root. */
  public ImageRef imageRef() {
    return imageRef;
  }

  /** The index digest of the image; null for a host-directory root. */
  public Digest imageDigest() {
    return imageDigest;
  }

  public ImageConfig imageConfig() {
    return imageConfig;
  }

  public SandboxOptions options() {
    return options;
  }

  /** The sandbox's root as runsc sees it on the host (its read-only lower layer). */
  public Path rootfs() {
    return root;
  }

  /** The sandbox's first process, for sandboxes made by run or restore; empty for warm ones. */
  public Optional<SandboxProcess> main() {
    return Optional.ofNullable(main);
  }

  /** Whether {@link SandboxOptions#timeout()} ran out and the sandbox was killed for it. */
  public boolean timedOut() {
    return timedOut;
  }

  /**
   * Waits until runsc knows the sandbox (a sandbox made by run or restore is returned as soon as
   * its runsc process starts, before the container exists).
   */
  private void awaitStarted() throws IOException {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (true) {
      Runsc.Result r = Runsc.run(rt.runsc().plain("state", id), Duration.ofSeconds(10));
      if (r.exit() == 0 && !r.output().contains("\"creating\"")) {
        return;
      }
      if (main != null && !main.isAlive()) {
        throw new IOException("sandbox " + id + " has ended");
      }
      if (System.nanoTime() > deadline) {
        throw new IOException(
            "sandbox " + id + " did not start within 30 s: " + r.output().strip());
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted waiting for sandbox " + id);
      }
    }
  }

  /** Starts another process in the running sandbox ({@code runsc exec}). */
  public SandboxProcess exec(List<String> args, Exec e) throws IOException {
    if (kind != Kind.WARM) {
      awaitStarted();
    }
    SandboxOptions.Builder b = options.toBuilder();
    if (e.workdir() != null) {
      b.workdir(e.workdir());
    }
    if (e.user() != null) {
      b.user(e.user());
    }
    e.env().forEach(b::env);
    OciSpec.Process p = OciSpec.process(imageConfig, b.build(), args, root);
    Path spec = dir.resolve("exec-" + execs.incrementAndGet() + ".json");
    Files.write(spec, OciSpec.json(OciSpec.processJson(p)));
    return start(
        rt.runsc().command(options, logs(), "exec", "--process=" + spec, id),
        e.stdin(),
        String.join(" ", p.args()));
  }

  /** Sends SIGKILL to every process in the sandbox; a run sandbox then ends. */
  public void kill() throws IOException {
    Runsc.run(rt.runsc().plain("kill", "--all", id, "KILL"), Duration.ofSeconds(10));
  }

  /**
   * Saves the sandbox's memory and processes as snapshot {@code name} of its image (replacing one
   * of that name) and stops the sandbox, as {@code runsc checkpoint} does. For an image from a
   * bucket the snapshot goes to the bucket too.
   */
  public Snapshot checkpoint(String name) throws IOException {
    if (imageDigest == null) {
      throw new IOException(
          "snapshots belong to an image; sandbox " + id + " runs on a host directory");
    }
    awaitStarted();
    Snapshot snap =
        Snapshot.take(
            rt,
            this,
            name,
            bundle.resolve("config.json"),
            imageDir -> {
              List<String> cmd = new ArrayList<>(rt.runsc().command(options, logs(), "checkpoint"));
              cmd.addAll(rt.runsc().checkpointFlags());
              cmd.addAll(List.of("--image-path=" + imageDir, id));
              runsc("checkpoint", cmd, Duration.ofMinutes(10));
            });
    try (var remote = rt.remoteStoreOf(imageRef).orElse(null)) {
      if (remote != null) {
        snap.upload(remote);
        rt.config()
            .notices()
            .accept(
                "snapshot "
                    + name
                    + " of "
                    + imageRef
                    + " stored in "
                    + remote.describe()
                    + " too");
      }
    }
    return snap;
  }

  List<String> command() {
    return SandboxRecord.read(dir).map(SandboxRecord::command).orElse(List.of());
  }

  @Override
  public synchronized void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    if (timer != null) {
      timer.cancel(false);
    }
    IOException first = null;
    // Kill first and let runsc run/restore reap the sandbox: delete --force of a sandbox whose
    // parent is still waiting on it stalls for seconds.
    if (main != null && main.isAlive()) {
      try {
        kill();
        if (main.waitFor(Duration.ofSeconds(10)).isEmpty()) {
          main.process().destroyForcibly();
        }
      } catch (IOException e) {
        first = e;
      } catch (InterruptedException e) {
        main.process().destroyForcibly();
        Thread.currentThread().interrupt();
      }
    }
    try {
      rt.clean(dir, kind == Kind.RESTORED && main != null && !main.isAlive());
    } catch (IOException e) {
      first = first == null ? e : first;
    }
    if (first != null) {
      throw first;
    }
  }
}
