package dev.skiff.runtime;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.digest.Digest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One gVisor sandbox ({@code runsc}) on an image's mount from the runtime's {@link MountPool}, or
 * on a host directory. Its state directory ({@link SandboxRecord} first, then the OCI bundle, the
 * read-only binds and runsc's logs) is written before anything starts, so that whatever a crash
 * leaves behind is found and cleaned by the next runtime start.
 */
final class GvisorSandbox implements Sandbox, RunscProcess.Fate {
  private static final Logger LOG = LoggerFactory.getLogger(GvisorSandbox.class);

  enum Kind {
    RUN,
    WARM,
    RESTORED
  }

  private final GvisorRuntime rt;
  private final String id;
  private final ImageSpec image;
  private final Path dir;
  private final Path bundle;
  private final Path rootfs;
  private final SandboxOptions options;
  private final Kind kind;
  private final AtomicInteger execs = new AtomicInteger();
  private MountPool.Lease lease;
  private ImageRef imageRef;
  private Digest imageDigest;

  /** What runsc sees as the root: the casfs mount, an overlay over it, or a host directory. */
  private Path root;

  private ImageConfig imageConfig;
  private boolean limitsMemory;
  private RunscProcess main;
  private ScheduledFuture<?> timer;
  private volatile boolean timedOut;
  private volatile State state = State.STARTING;

  private GvisorSandbox(
      GvisorRuntime rt, String id, ImageSpec image, SandboxOptions options, Kind kind) {
    this.rt = rt;
    this.id = id;
    this.image = image;
    this.dir = rt.sandboxes().dir(id);
    this.bundle = dir.resolve("bundle");
    this.rootfs = bundle.resolve("rootfs");
    this.options = options;
    this.kind = kind;
  }

  static Sandbox launch(
      GvisorRuntime rt,
      ImageSpec image,
      SandboxOptions o,
      Kind kind,
      List<String> args,
      boolean stdin,
      Snapshot snapshot)
      throws IOException {
    GvisorSandbox sb = new GvisorSandbox(rt, SandboxRegistry.newId(), image, o, kind);
    ReadOnlyBinds readOnly = new ReadOnlyBinds(sb.dir.resolve("ro"));
    Files.createDirectories(sb.rootfs);
    Files.createDirectories(sb.logs());
    SandboxRecord.forThisProcess(
            sb.id,
            image.toString(),
            kind == Kind.WARM ? List.of("(warm)") : args,
            kind.name().toLowerCase(Locale.ROOT))
        .write(sb.dir);
    rt.opened(sb);
    try {
      // runsc's gofer creates each bind mount's target in the host's view of the root, which a
      // read-only casfs mount refuses: with binds, the root is an overlayfs over the mount whose
      // upper layer takes those (empty) targets. Sandbox writes still go to gVisor's overlay.
      boolean binds =
          kind == Kind.WARM
              || !o.volumes().isEmpty()
              || (snapshot != null && snapshot.hasBinds())
              || o.runc() // runc writes to its root: the overlay's upper directory takes them
              || o.captureWrites() != null;
      if (o.runc()) {
        if (snapshot != null) {
          throw new IllegalArgumentException("a snapshot restores under gVisor only, not runc");
        }
        Files.createFile(sb.dir.resolve(SandboxRegistry.RUNC_MARK));
      }
      sb.lease = rt.mounts().acquire(image);
      Path lower = sb.lease.path();
      sb.imageRef = sb.lease.ref();
      sb.imageDigest = sb.lease.digest();
      sb.imageConfig =
          sb.lease.digest() == null
              ? ImageConfig.defaults()
              : ImageConfig.parse(sb.lease.configJson());
      if (binds) {
        Path upper = o.captureWrites() != null ? o.captureWrites() : sb.dir.resolve("upper");
        Path work =
            o.captureWrites() != null
                ? o.captureWrites().resolveSibling(o.captureWrites().getFileName() + ".work")
                : sb.dir.resolve("work");
        HostOverlay.mount(lower, upper, work, sb.rootfs);
      }
      sb.root = binds ? sb.rootfs : lower;
      Runsc runsc = rt.runsc();
      String what;
      if (snapshot != null) {
        if (sb.imageDigest == null) {
          throw new IOException(
              "snapshot '" + snapshot.name() + "' belongs to an image, not " + image);
        }
        snapshot.checkRestorable(sb.imageDigest, runsc.version(), runsc.platform().flag());
        SandboxOptions limits = snapshot.withLimits(o);
        Files.write(
            sb.bundle.resolve("config.json"),
            snapshot.specFor(sb.root, readOnly, o.volumes(), limits, sb.cgroupsPath(limits)));
        sb.main =
            sb.start(
                runsc.command(
                    o,
                    sb.logs(),
                    "restore",
                    "--image-path=" + snapshot.checkpointDir(),
                    "--bundle=" + sb.bundle,
                    sb.id),
                stdin,
                "restored " + snapshot.name());
        what = "restored";
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
                  runsc.command(o, sb.logs(), "run", "--bundle=" + sb.bundle, sb.id),
                  stdin,
                  String.join(" ", p.args()));
        } else {
          // create's stdio becomes the init's: a file, never a pipe (a sandbox holding a pipe
          // open would keep a reader of it waiting for ever).
          sb.runsc(
              "create",
              runsc.command(o, sb.logs(), "create", "--bundle=" + sb.bundle, sb.id),
              Duration.ofSeconds(60));
          sb.runsc("start", runsc.command(o, sb.logs(), "start", sb.id), Duration.ofSeconds(30));
        }
        what = kind.name().toLowerCase(Locale.ROOT);
      }
      if (o.timeout() != null) {
        sb.timer =
            rt.scheduler().schedule(sb::timeUp, o.timeout().toMillis(), TimeUnit.MILLISECONDS);
      }
      sb.state = State.RUNNING;
      rt.listener().event(new RuntimeEvent.SandboxStarted(sb.id, image, what));
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
      rt.listener().event(new RuntimeEvent.LimitNotEnforced("memory", cg.why()));
    }
    if (o.cpus() > 0 && !cg.cpu()) {
      rt.listener().event(new RuntimeEvent.LimitNotEnforced("cpus", cg.why()));
    }
    limitsMemory = o.memoryBytes() > 0 && cg.memory();
    if (limitsMemory) {
      try {
        Cgroups.prepareMemory(id, o.memoryBytes(), cg.cpu() ? o.cpus() : 0);
      } catch (IOException e) {
        // runsc makes the cgroup itself then; only the out-of-memory report is lost
        LOG.warn("sandbox {}: cannot prepare its memory cgroup ({})", id, e.toString());
      }
    }
    return limitsMemory || (o.cpus() > 0 && cg.cpu()) ? Cgroups.path(id) : null;
  }

  private Path logs() {
    return dir.resolve("logs");
  }

  private RunscProcess start(List<String> cmd, boolean stdin, String what) throws IOException {
    ProcessBuilder pb = new ProcessBuilder(cmd);
    if (!stdin) {
      pb.redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
    }
    return new RunscProcess(pb.start(), stdin, what, this);
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
      LOG.warn("sandbox {}: killing after its timeout: {}", id, e.toString());
    }
  }

  @Override
  public String id() {
    return id;
  }

  @Override
  public ImageSpec image() {
    return image;
  }

  @Override
  public ImageRef imageRef() {
    return imageRef;
  }

  @Override
  public Digest imageDigest() {
    return imageDigest;
  }

  @Override
  public ImageConfig imageConfig() {
    return imageConfig;
  }

  @Override
  public SandboxOptions options() {
    return options;
  }

  @Override
  public Path rootfs() {
    return root;
  }

  @Override
  public State state() {
    State s = state;
    if (s == State.RUNNING && main != null && !main.isAlive()) {
      return State.STOPPED;
    }
    return s;
  }

  @Override
  public Optional<SandboxProcess> main() {
    return Optional.ofNullable(main);
  }

  @Override
  public boolean timedOut() {
    return timedOut;
  }

  @Override
  public boolean oomKilled() {
    return limitsMemory && Cgroups.oomKills(id) > 0;
  }

  /** Throws unless processes may run in the sandbox now. */
  private void requireRunning(String what) {
    State s = state();
    if (s != State.RUNNING) {
      throw new IllegalStateException(
          "sandbox " + id + " is " + s.name().toLowerCase(Locale.ROOT) + ": cannot " + what);
    }
  }

  /**
   * Waits until runsc knows the sandbox (a sandbox made by run or restore is returned as soon as
   * its runsc process starts, before the container exists).
   */
  private void awaitStarted() throws IOException {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (true) {
      Runsc.Result r =
          Runsc.run(rt.runsc().plain(options.runc(), "state", id), Duration.ofSeconds(10));
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

  @Override
  public SandboxProcess exec(List<String> args, Exec e) throws IOException {
    requireRunning("start a process in it");
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
    OciSpec.Process p = OciSpec.execProcess(imageConfig, b.build(), args, root);
    Path spec = dir.resolve("exec-" + execs.incrementAndGet() + ".json");
    Files.write(spec, OciSpec.json(OciSpec.processJson(p, options.runc())));
    return start(
        rt.runsc().command(options, logs(), "exec", "--process=" + spec, id),
        e.stdin(),
        String.join(" ", p.args()));
  }

  @Override
  public void kill() throws IOException {
    if (state == State.CLOSED) {
      return;
    }
    Runsc.run(
        rt.runsc().plain(options.runc(), "kill", "--all", id, "KILL"), Duration.ofSeconds(10));
  }

  @Override
  public Snapshot checkpoint(String name) throws IOException {
    if (imageDigest == null) {
      throw new IOException(
          "snapshots belong to an image; sandbox " + id + " runs on a host directory");
    }
    requireRunning("checkpoint it");
    if (options.runc()) {
      throw new IllegalStateException(
          "sandbox " + id + " runs under runc, not gVisor: only gVisor sandboxes have snapshots");
    }
    if (!options.devices().isEmpty()) {
      throw new IllegalStateException(
          "sandbox "
              + id
              + " has GPUs: gVisor cannot checkpoint a sandbox whose nvproxy holds the driver's"
              + " state (GPU memory snapshots are not supported)");
    }
    awaitStarted();
    Snapshot snap =
        rt.snapshots()
            .take(
                image,
                imageDigest,
                name,
                SandboxRecord.read(dir).map(SandboxRecord::command).orElse(List.of()),
                bundle.resolve("config.json"),
                rt.runsc(),
                imageDir -> {
                  List<String> cmd =
                      new ArrayList<>(rt.runsc().command(options, logs(), "checkpoint"));
                  cmd.addAll(rt.runsc().checkpointFlags());
                  cmd.addAll(List.of("--image-path=" + imageDir, id));
                  runsc("checkpoint", cmd, Duration.ofMinutes(10));
                },
                rt.listener());
    state = State.STOPPED;
    return snap;
  }

  @Override
  public void close() throws IOException {
    synchronized (this) {
      if (state == State.CLOSED) {
        return;
      }
      state = State.CLOSED;
    }
    if (timer != null) {
      timer.cancel(false);
    }
    IOException first = null;
    ExitStatus status = null;
    // Kill first and let runsc run/restore reap the sandbox: delete --force of a sandbox whose
    // parent is still waiting on it stalls for seconds.
    if (main != null) {
      try {
        if (main.isAlive()) {
          Runsc.run(
              rt.runsc().plain(options.runc(), "kill", "--all", id, "KILL"),
              Duration.ofSeconds(10));
          if (main.waitFor(Duration.ofSeconds(10)).isEmpty()) {
            main.process().destroyForcibly();
          }
        }
        status = main.waitFor(Duration.ofSeconds(5)).orElse(null);
      } catch (IOException e) {
        first = e;
      } catch (InterruptedException e) {
        main.process().destroyForcibly();
        Thread.currentThread().interrupt();
      }
    }
    try {
      // Everything in it is dead by now (killed, or its first process ended): runsc's delete,
      // which waits seconds for the gofer to go, runs in the background; the runtime reaps it.
      if (main == null) { // a warm sandbox: its init and execs die now
        Runsc.run(
            rt.runsc().plain(options.runc(), "kill", "--all", id, "KILL"), Duration.ofSeconds(10));
      }
      rt.deleting(rt.sandboxes().clean(dir, main == null || !main.isAlive()));
    } catch (IOException e) {
      first = first == null ? e : first;
    }
    if (lease != null) {
      lease.close();
    }
    rt.closed(this);
    rt.listener().event(new RuntimeEvent.SandboxClosed(id, status));
    if (first != null) {
      throw first;
    }
  }
}
