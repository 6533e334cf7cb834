package dev.skiff.scheduler.worker;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageInfo;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.NoSuchImageException;
import dev.skiff.gpu.Gpu;
import dev.skiff.gpu.GpuClaims;
import dev.skiff.gpu.GpuSandbox;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.Snapshot;
import dev.skiff.scheduler.CodeBundle;
import dev.skiff.scheduler.Payloads;
import dev.skiff.scheduler.client.Tokens;
import dev.skiff.scheduler.control.Coalescer;
import dev.skiff.scheduler.control.Scheduler;
import dev.skiff.scheduler.proto.Assignment;
import dev.skiff.scheduler.proto.BuildProgress;
import dev.skiff.scheduler.proto.CodeRequest;
import dev.skiff.scheduler.proto.ContainerExited;
import dev.skiff.scheduler.proto.ContainerFailed;
import dev.skiff.scheduler.proto.ContainerStarted;
import dev.skiff.scheduler.proto.DoneBatch;
import dev.skiff.scheduler.proto.Failure;
import dev.skiff.scheduler.proto.Function;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.GpuSample;
import dev.skiff.scheduler.proto.GpuSamples;
import dev.skiff.scheduler.proto.Hello;
import dev.skiff.scheduler.proto.InputDone;
import dev.skiff.scheduler.proto.LogLine;
import dev.skiff.scheduler.proto.PayloadRef;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.RunInput;
import dev.skiff.scheduler.proto.StartContainer;
import dev.skiff.scheduler.proto.Status;
import dev.skiff.scheduler.proto.WorkerMessage;
import dev.skiff.scheduler.proto.WorkersGrpc;
import dev.skiff.scheduler.runner.JavaRunnerJars;
import dev.skiff.scheduler.runner.Outcome;
import dev.skiff.scheduler.runner.PythonRunner;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The worker daemon of one host: attaches to the scheduler, says what the host has (CPUs, memory,
 * GPUs, images), and runs the containers the scheduler places on it, all on one resident {@link
 * SandboxRuntime}. Containers start in parallel (up to {@link Options#parallelStarts}); calls run
 * on them without a thread each. What containers print goes to the scheduler line by line.
 *
 * <p>When its stream to the scheduler breaks, the worker stops every container (the scheduler has
 * already given their calls to others) and attaches again, retrying with backoff for as long as it
 * runs. A function's code is fetched from the scheduler once per digest and kept under the worker's
 * directory; memory snapshots of functions that ask for them are taken once per function version
 * and host (or found in the image's bucket) and restored for every later container.
 */
public final class Worker implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Worker.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * How a worker runs.
   *
   * @param id its name at the scheduler (unique per host)
   * @param cpus cores it offers (0: no limit)
   * @param memoryBytes memory it offers (0: no limit)
   * @param gpus its GPUs by type, one entry each
   * @param dir where it keeps the runner and code bundles
   * @param python the interpreter to run in containers (a path, or a name found on the image's
   *     PATH)
   * @param parallelStarts containers started at once
   * @param gpuSandbox how a container gets the host's GPUs (device nodes, driver files), for GPUs
   *     read off the driver, whose {@link GpuSandbox#host() host} lists them in the order of {@code
   *     gpus}; null where {@code gpus} are declared (a test's, or an operator's who says them):
   *     then a container is only told its GPUs' indexes ({@code NVIDIA_VISIBLE_DEVICES})
   */
  public record Options(
      String id,
      double cpus,
      long memoryBytes,
      List<String> gpus,
      Path dir,
      String python,
      int parallelStarts,
      GpuSandbox gpuSandbox,
      Duration keepUnused,
      dev.skiff.runtime.build.ImageBuilder.SharedCache buildCache) {
    /** How long code and function snapshots no container uses are kept, by default. */
    public static final Duration KEEP_UNUSED = Duration.ofHours(24);

    public Options {
      gpus = List.copyOf(gpus);
      if (keepUnused == null || keepUnused.isNegative() || keepUnused.isZero()) {
        throw new IllegalArgumentException("code and snapshots are kept for a positive time");
      }
      if (gpuSandbox != null && gpuSandbox.host().gpus().size() != gpus.size()) {
        throw new IllegalArgumentException("the GPUs offered are not the host's GPUs");
      }
    }

    /** Options with declared GPUs (or none). */
    public Options(
        String id,
        double cpus,
        long memoryBytes,
        List<String> gpus,
        Path dir,
        String python,
        int parallelStarts) {
      this(id, cpus, memoryBytes, gpus, dir, python, parallelStarts, null, KEEP_UNUSED, null);
    }

    /** Options with the host's GPUs in sandboxes of {@code gpuSandbox}. */
    public Options(
        String id,
        double cpus,
        long memoryBytes,
        List<String> gpus,
        Path dir,
        String python,
        int parallelStarts,
        GpuSandbox gpuSandbox) {
      this(id, cpus, memoryBytes, gpus, dir, python, parallelStarts, gpuSandbox, KEEP_UNUSED, null);
    }

    /** These options, code and function snapshots unused for {@code keep} removed. */
    public Options withKeepUnused(Duration keep) {
      return new Options(
          id, cpus, memoryBytes, gpus, dir, python, parallelStarts, gpuSandbox, keep, buildCache);
    }

    /**
     * These options, image builds finding steps in {@code cache} and sharing theirs there, so that
     * workers with stores of their own build each step once between them.
     */
    public Options withBuildCache(dev.skiff.runtime.build.ImageBuilder.SharedCache cache) {
      return new Options(
          id, cpus, memoryBytes, gpus, dir, python, parallelStarts, gpuSandbox, keepUnused, cache);
    }
  }

  private final ImageStore store;
  private final SandboxRuntime rt;
  private final ManagedChannel channel;
  private final String token;
  private final Options options;
  private final Path runnerDir;
  // of every runner file: a snapshot holds a runner, so a new runner makes new snapshots
  private final byte[] runnerDigest;
  private final Path codeDir;
  // bound where a Java function's class path goes in a warm JVM's snapshot (restores bind theirs)
  private final Path emptyCode;
  private final ExecutorService starts;
  // large inputs and outputs move to and from the payload store here, off the threads of calls
  private final ExecutorService payloadIo =
      Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("skiff-worker-payload").factory());
  // image builds the scheduler hands this worker, one at a time
  private final ExecutorService builds =
      Executors.newSingleThreadExecutor(
          r -> Thread.ofPlatform().daemon().name("skiff-worker-build").unstarted(r));
  private final ScheduledExecutorService timers;
  private final Map<String, FunctionContainer> containers = new ConcurrentHashMap<>();
  // the GPUs each container holds on this host, released when it ends (see GpuClaims)
  private final Map<String, GpuClaims.Claim> gpuClaims = new ConcurrentHashMap<>();
  private final GpuClaims claims;
  private final Map<String, CompletableFuture<Path>> code = new ConcurrentHashMap<>();
  private final Map<String, CompletableFuture<Snapshot>> snapshots = new ConcurrentHashMap<>();

  // what each live container holds of this host's code and snapshots (see sweep)
  private record Use(Path code, String snapshot) {}

  // by container id: small records, not the containers, which a sweep's wait would keep alive
  private final Map<String, Use> uses = new ConcurrentHashMap<>();
  // code lookups (shared) and the sweep's removals (exclusive) take turns: what a lookup returns
  // was touched first, so a sweep after it keeps it
  private final java.util.concurrent.locks.ReadWriteLock sweepLock =
      new java.util.concurrent.locks.ReentrantReadWriteLock();
  private final Object sendLock = new Object();
  private final Coalescer<InputDone> dones =
      new Coalescer<>(
          1024,
          InputDone::getSerializedSize,
          Payloads.BATCH_BYTES,
          batch ->
              send(
                  WorkerMessage.newBuilder()
                      .setDoneBatch(DoneBatch.newBuilder().addAllDone(batch))
                      .build()));
  private volatile StreamObserver<WorkerMessage> up;
  private volatile StreamObserver<Assignment> current;
  private final java.util.concurrent.atomic.AtomicLong generation =
      new java.util.concurrent.atomic.AtomicLong();
  private volatile CompletableFuture<Void> attached = new CompletableFuture<>();
  private volatile boolean closed;
  private long backoffMs = 250;

  private Worker(
      ImageStore store, SandboxRuntime rt, ManagedChannel channel, String token, Options options)
      throws IOException {
    this.store = store;
    this.rt = rt;
    this.channel = channel;
    this.token = token;
    this.options = options;
    this.claims = GpuClaims.of(store.home());
    this.runnerDir = PythonRunner.install(options.dir().resolve("runner"));
    JavaRunnerJars.install(runnerDir);
    this.runnerDigest = digestOf(runnerDir);
    this.codeDir = Files.createDirectories(options.dir().resolve("code"));
    this.emptyCode = Files.createDirectories(codeDir.resolve("empty"));
    this.starts =
        Executors.newFixedThreadPool(
            Math.max(1, options.parallelStarts()),
            r -> Thread.ofPlatform().daemon().name("skiff-worker-start").unstarted(r));
    this.timers = dev.skiff.runtime.Timers.single("skiff-worker-timers");
    if (options.gpuSandbox() != null && options.gpuSandbox().inventory() != null) {
      timers.scheduleWithFixedDelay(this::sampleGpus, 1, GPU_SAMPLE_SECONDS, TimeUnit.SECONDS);
    }
    long every = Math.max(1, Math.min(options.keepUnused().toSeconds() / 4, 600));
    timers.scheduleWithFixedDelay(
        () ->
            Thread.ofVirtual()
                .name("skiff-worker-sweep")
                .start(() -> sweep(Instant.now().minus(options.keepUnused()))),
        every,
        every,
        TimeUnit.SECONDS);
  }

  /** How often a worker with GPUs tells the scheduler what they are doing. */
  static final int GPU_SAMPLE_SECONDS = 5;

  /** Sends what the GPUs are doing now (utilisation, memory, temperature, power). */
  private void sampleGpus() {
    try {
      GpuSamples.Builder b = GpuSamples.newBuilder();
      options
          .gpuSandbox()
          .sample()
          .forEach(
              (i, g) ->
                  b.addSample(
                      GpuSample.newBuilder()
                          .setIndex(i)
                          .setUtilisation(g.utilisation())
                          .setMemoryUsedMib(g.memoryUsedMib())
                          .setMemoryMib(g.memoryMib())
                          .setTemperatureC(g.temperatureC())
                          .setPowerWatts(g.powerWatts())));
      if (b.getSampleCount() > 0) {
        send(WorkerMessage.newBuilder().setGpuSamples(b).build());
      }
    } catch (RuntimeException e) {
      LOG.debug("sampling the GPUs: {}", e.toString()); // the next round tries again
    }
  }

  /**
   * Starts a worker on {@code rt} that attaches to the scheduler over {@code channel} with the
   * worker {@code token}. It neither owns the runtime nor the channel.
   */
  public static Worker start(
      ImageStore store, SandboxRuntime rt, ManagedChannel channel, String token, Options options)
      throws IOException {
    Worker w = new Worker(store, rt, channel, token, options);
    w.connect();
    return w;
  }

  /** Completes once the worker is attached (again, after a reconnect: the latest attach). */
  public CompletableFuture<Void> attached() {
    return attached;
  }

  /** Containers running now. */
  public int containers() {
    return containers.size();
  }

  private synchronized void connect() {
    if (closed) {
      return;
    }
    CompletableFuture<Void> ready = attached.isDone() ? new CompletableFuture<>() : attached;
    attached = ready;
    long gen = generation.incrementAndGet();
    StreamObserver<Assignment> down =
        new StreamObserver<>() {
          @Override
          public void onNext(Assignment a) {
            if (a.hasWelcome()) {
              backoffMs = 250;
              ready.complete(null);
              return;
            }
            handle(a, gen);
          }

          @Override
          public void onError(Throwable t) {
            disconnected(this, t.getMessage());
          }

          @Override
          public void onCompleted() {
            disconnected(this, "the scheduler ended the stream");
          }
        };
    current = down; // before the stream starts: it may fail at once, on another thread
    try {
      StreamObserver<WorkerMessage> stream =
          WorkersGrpc.newStub(channel).withCallCredentials(Tokens.bearer(token)).attach(down);
      synchronized (sendLock) {
        up = stream;
        stream.onNext(WorkerMessage.newBuilder().setHello(hello()).build());
      }
    } catch (RuntimeException e) {
      LOG.warn("attaching to the scheduler: {}", e.toString());
      retry();
    }
  }

  private Hello hello() {
    List<String> images = new ArrayList<>();
    try {
      for (ImageInfo i : store.images()) {
        if (i.damage() == null || i.damage().isEmpty()) {
          images.add(i.ref().toString());
        }
      }
    } catch (IOException | RuntimeException e) {
      LOG.warn("listing this host's images: {}", e.toString());
    }
    return Hello.newBuilder()
        .setWorkerId(options.id())
        .setCpus(options.cpus())
        .setMemoryBytes(options.memoryBytes())
        .addAllGpus(options.gpus())
        .setGpusWithoutGvisor(
            options.gpuSandbox() != null && options.gpuSandbox().runsWithoutGvisor())
        .addAllImages(images)
        .build();
  }

  private synchronized void disconnected(StreamObserver<Assignment> which, String why) {
    if (which != current) {
      return;
    }
    current = null;
    if (closed) {
      return;
    }
    if (attached.isDone()) {
      LOG.warn(
          "lost the scheduler ({}); stopping {} containers and attaching again",
          why,
          containers.size());
    } else {
      LOG.debug("attaching to the scheduler failed ({}); trying again", why);
    }
    stopAll();
    retry();
  }

  private void retry() {
    long delay = backoffMs;
    backoffMs = Math.min(5000, backoffMs * 2);
    if (!closed) {
      timers.schedule(this::connect, delay, TimeUnit.MILLISECONDS);
    }
  }

  private void send(WorkerMessage m) {
    synchronized (sendLock) {
      if (up == null) {
        return;
      }
      try {
        up.onNext(m);
      } catch (RuntimeException e) {
        LOG.debug("sending to the scheduler: {}", e.toString());
      }
    }
  }

  private void handle(Assignment a, long gen) {
    switch (a.getKindCase()) {
      case START -> starts.execute(() -> startContainer(a.getStart(), gen));
      case RUN -> run(a.getRun());
      case RUN_BATCH -> a.getRunBatch().getRunList().forEach(this::run);
      case STOP -> {
        FunctionContainer c = containers.remove(a.getStop().getContainerId());
        if (c != null) {
          starts.execute(
              () -> {
                closeQuietly(c);
                exited(a.getStop().getContainerId(), "it was stopped");
              });
        }
      }
      case BUILD -> builds.execute(() -> build(a.getBuild()));
      default -> LOG.warn("unknown assignment {}", a.getKindCase());
    }
  }

  /** Builds an image the scheduler asked for, sending its log, then its name or why it failed. */
  private void build(dev.skiff.scheduler.proto.BuildImage b) {
    java.util.function.Consumer<String> log =
        line ->
            send(
                WorkerMessage.newBuilder()
                    .setBuild(BuildProgress.newBuilder().setBuildId(b.getBuildId()).setLog(line))
                    .build());
    BuildProgress.Builder end = BuildProgress.newBuilder().setBuildId(b.getBuildId());
    try {
      Path context =
          b.getContextDigest().isEmpty()
              ? Files.createDirectories(options.dir().resolve("empty-context"))
              : code(b.getContextDigest());
      var result =
          new dev.skiff.runtime.build.ImageBuilder(
                  store,
                  rt,
                  log,
                  // anonymous: this host's Docker logins are not lent to whoever asks for a build
                  dev.skiff.casfs.registry.RegistryClient.Options.defaults().withDockerConfig(null),
                  options.buildCache())
              .build(
                  b.getDockerfile(),
                  context,
                  dev.skiff.api.ImageRef.parse(b.getTag()),
                  Map.of(),
                  b.getForce());
      end.setImage(result.image().toString());
    } catch (IOException | RuntimeException e) {
      LOG.warn("build {} failed: {}", b.getBuildId(), e.toString());
      end.setError(e.getMessage() != null ? e.getMessage() : e.toString());
    }
    send(WorkerMessage.newBuilder().setBuild(end).build());
  }

  // ---- what a worker keeps on disk --------------------------------------------------------------

  /**
   * Removes this host's code (Python bundles, class paths, jars) and function snapshots that no
   * live container holds and none has used since {@code usedBefore}: a worker that lives for days
   * keeps what its functions use, not every version ever deployed. Later containers fetch or take
   * again what they need. Returns how many were removed. Runs every so often on its own ({@link
   * Options#keepUnused}).
   */
  public int sweep(Instant usedBefore) {
    uses.keySet().retainAll(new java.util.HashSet<>(containers.keySet()));
    java.util.Set<Path> codeInUse = new java.util.HashSet<>();
    java.util.Set<String> snapshotsInUse = new java.util.HashSet<>();
    for (Use u : uses.values()) {
      if (u.code() != null) {
        codeInUse.add(u.code());
      }
      if (u.snapshot() != null) {
        snapshotsInUse.add(u.snapshot());
      }
    }
    int removed = 0;
    // Starts that fetch code hold the shared side meanwhile: the sweep waits for none of them
    // (the next round comes), and so never holds a start up.
    if (!sweepLock.writeLock().tryLock()) {
      return 0;
    }
    try {
      try {
        removed += sweepDirs(codeDir, codeInUse, usedBefore, "[0-9a-f]{64}");
        removed += sweepDirs(codeDir.resolve("classpath"), codeInUse, usedBefore, "[0-9a-f]{64}");
        Path jars = codeDir.resolve("jars");
        if (Files.isDirectory(jars)) {
          try (var files = Files.list(jars)) {
            for (Path j : files.toList()) {
              // a jar a class path still links (a hard link there) stays
              if (j.toString().endsWith(".jar")
                  && ((Number) Files.getAttribute(j, "unix:nlink")).intValue() == 1
                  && Files.getLastModifiedTime(j).toInstant().isBefore(usedBefore)) {
                Files.delete(j);
                removed++;
              }
            }
          }
        }
        int snaps = rt.snapshots().sweepLocal(usedBefore, snapshotsInUse, "fn.");
        if (snaps > 0) {
          // forget what was removed; a snapshot being taken or fetched now stays
          snapshots
              .entrySet()
              .removeIf(
                  e ->
                      e.getKey().startsWith("fn.")
                          && e.getValue().isDone()
                          && !e.getValue().isCompletedExceptionally()
                          && !Files.isDirectory(e.getValue().join().dir()));
        }
        removed += snaps;
      } catch (IOException | RuntimeException e) {
        LOG.warn("sweeping unused code and snapshots: {}", e.toString());
      }
    } finally {
      sweepLock.writeLock().unlock();
    }
    if (removed > 0) {
      LOG.info("removed {} unused code bundles, jars and function snapshots", removed);
    }
    return removed;
  }

  private static int sweepDirs(Path parent, java.util.Set<Path> inUse, Instant before, String names)
      throws IOException {
    if (!Files.isDirectory(parent)) {
      return 0;
    }
    int removed = 0;
    try (var dirs = Files.list(parent)) {
      for (Path d : dirs.toList()) {
        if (d.getFileName().toString().matches(names)
            && !inUse.contains(d)
            && Files.getLastModifiedTime(d).toInstant().isBefore(before)) {
          dev.skiff.casfs.util.Trees.delete(d);
          removed++;
        }
      }
    }
    return removed;
  }

  /** Marks {@code p} used now (see {@link #sweep}). */
  private static Path touched(Path p) throws IOException {
    Files.setLastModifiedTime(p, java.nio.file.attribute.FileTime.from(Instant.now()));
    return p;
  }

  // ---- containers -------------------------------------------------------------------------------

  /** Starts a container for the attachment {@code gen}; one that outlived it is stopped at once. */
  private void startContainer(StartContainer s, long gen) {
    String id = s.getContainerId();
    Function f = s.getFunction();
    try {
      FunctionContainer.Spec spec = spec(s);
      LogSinkToScheduler logs = new LogSinkToScheduler(id);
      FunctionContainer c;
      boolean gpus = !spec.options().devices().isEmpty();
      if (gpus) {
        // A sandbox with GPUs is never checkpointed (gVisor cannot save nvproxy's state), and a
        // snapshot taken without them would restore a container without them: start it plainly.
        c = FunctionContainer.start(rt, spec, runnerDir, timers, logs);
      } else if (f.getSpec().getSnapshot()) {
        c = fromSnapshot(s, spec, logs);
      } else if (spec.language().equals("java") && spec.options().user() == null) {
        c = fromWarmJvm(spec, logs);
      } else {
        c = FunctionContainer.start(rt, spec, runnerDir, timers, logs);
      }
      containers.put(id, c); // before its use: a sweep keeps uses of live containers only
      uses.put(
          id,
          new Use(
              spec.codeDir(), !gpus && f.getSpec().getSnapshot() ? snapshotName(s, spec) : null));
      if (closed || gen != generation.get()) {
        containers.remove(id, c);
        closeQuietly(c);
        releaseGpus(id);
        return;
      }
      c.ended()
          .thenAccept(
              why -> {
                if (containers.remove(id, c)) {
                  closeQuietly(c);
                  exited(id, why);
                }
              });
      send(
          WorkerMessage.newBuilder()
              .setStarted(ContainerStarted.newBuilder().setContainerId(id))
              .build());
    } catch (FunctionContainer.ImportFailedException e) {
      failed(
          id,
          Failure.newBuilder()
              .setType(Scheduler.IMPORT_FAILED)
              .setMessage(
                  "importing "
                      + f.getSpec().getHandler()
                      + " failed: "
                      + e.error().type()
                      + ": "
                      + e.error().message())
              .setTraceback(e.error().traceback())
              .build());
    } catch (NoSuchImageException e) {
      failed(
          id,
          Failure.newBuilder().setType(Scheduler.NO_SUCH_IMAGE).setMessage(e.getMessage()).build());
    } catch (IOException | RuntimeException e) {
      LOG.warn("starting a container of {}: {}", f.getId(), e.toString(), e);
      failed(
          id,
          Failure.newBuilder()
              .setType("ContainerStartFailed")
              .setMessage("on worker " + options.id() + ": " + e.getMessage())
              .build());
    }
  }

  private FunctionContainer.Spec spec(StartContainer s) throws IOException {
    FunctionSpec fs = s.getFunction().getSpec();
    SandboxOptions.Builder o = SandboxOptions.builder();
    if (fs.getResources().getCpus() > 0) {
      o.cpus(fs.getResources().getCpus());
    }
    if (fs.getResources().getMemoryBytes() > 0) {
      o.memory(fs.getResources().getMemoryBytes());
    }
    new TreeMap<>(fs.getEnvMap()).forEach((k, v) -> o.env(k + "=" + v));
    new TreeMap<>(s.getSecretEnvMap()).forEach((k, v) -> o.env(k + "=" + v));
    o.env("SKIFF_FUNCTION=" + s.getFunction().getId());
    o.env("SKIFF_FUNCTION_VERSION=" + s.getFunction().getVersion());
    if (s.getGpuIndexesCount() > 0) {
      if (options.gpuSandbox() == null) {
        o.env(
            "NVIDIA_VISIBLE_DEVICES="
                + String.join(",", s.getGpuIndexesList().stream().map(String::valueOf).toList()));
      } else {
        List<Gpu> mine =
            s.getGpuIndexesList().stream()
                .map(i -> options.gpuSandbox().host().gpus().get(i))
                .toList();
        // The scheduler gives a GPU to one container at a time; the claim keeps `skiff run
        // --gpu` on this host (and a worker that outlived its scheduler) off it too.
        GpuClaims.Claim claim =
            claims
                .claim(mine, mine.size())
                .orElseThrow(
                    () ->
                        new IOException(
                            "GPUs "
                                + s.getGpuIndexesList()
                                + " are in use on this host by something else (skiff run"
                                + " --gpu?)"));
        gpuClaims.put(s.getContainerId(), claim);
        options.gpuSandbox().give(o, mine);
      }
    }
    boolean java = fs.getLanguage().equals("java");
    Path code;
    if (java) {
      code = fs.getClasspathCount() == 0 ? null : classpath(fs.getClasspathList());
    } else {
      code = fs.getCodeDigest().isEmpty() ? null : code(fs.getCodeDigest());
      if (code != null) {
        o.defaultWorkdir(PythonRunner.CODE); // unless the image names its own
      }
    }
    String interpreter =
        !fs.getInterpreter().isEmpty() ? fs.getInterpreter() : java ? "java" : options.python();
    return new FunctionContainer.Spec(
        ImageSpec.parse(fs.getImage()),
        java ? "java" : "python",
        interpreter,
        fs.getHandler(),
        code,
        Math.max(1, fs.getConcurrency()),
        o.build());
  }

  /**
   * Renames directory {@code tmp} to {@code dir}, unless a racing start made {@code dir} first
   * (with the same content, as both are named by it): then {@code tmp} is left for the caller to
   * remove.
   */
  static void publish(Path tmp, Path dir) throws IOException {
    try {
      Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
    } catch (java.nio.file.FileSystemException raced) {
      // rename(2) says ENOTEMPTY, which the JDK reports as a plain FileSystemException.
      if (!Files.isDirectory(dir)) {
        throw raced;
      }
    }
  }

  /**
   * A Java function's class path as a directory of its jars, named in order ({@code 000.jar}, ...):
   * links to the jars kept by digest, each fetched from the scheduler the first time. The directory
   * is named by the list's digest, so every container of the same class path shares it.
   */
  private Path classpath(List<String> digests) throws IOException {
    sweepLock.readLock().lock();
    try {
      return classpathHeld(digests);
    } finally {
      sweepLock.readLock().unlock();
    }
  }

  private Path classpathHeld(List<String> digests) throws IOException {
    String key = CodeBundle.digest(String.join("\n", digests).getBytes(StandardCharsets.UTF_8));
    Path dir = codeDir.resolve("classpath").resolve(key.substring(key.indexOf(':') + 1));
    if (Files.isDirectory(dir)) {
      return touched(dir);
    }
    List<Path> jars = new ArrayList<>();
    for (String d : digests) {
      jars.add(jar(d));
    }
    Files.createDirectories(dir.getParent());
    Path tmp = Files.createTempDirectory(dir.getParent(), ".classpath-");
    try {
      for (int i = 0; i < jars.size(); i++) {
        Files.createLink(tmp.resolve(String.format("%03d.jar", i)), jars.get(i));
      }
      publish(tmp, dir);
    } finally {
      if (Files.exists(tmp)) {
        try (var files = Files.list(tmp)) {
          for (Path f : files.toList()) {
            Files.delete(f);
          }
        }
        Files.delete(tmp);
      }
    }
    return dir;
  }

  /** Jar {@code digest} of a class path, fetched from the scheduler the first time. */
  private Path jar(String digest) throws IOException {
    String hex = digest.substring(digest.indexOf(':') + 1);
    if (!hex.matches("[0-9a-f]{64}")) {
      throw new IOException("bad code digest " + digest);
    }
    Path file = codeDir.resolve("jars").resolve(hex + ".jar");
    if (Files.isRegularFile(file)) {
      return touched(file);
    }
    byte[] bytes = fetchCode(digest);
    Files.createDirectories(file.getParent());
    Path tmp = Files.createTempFile(file.getParent(), ".jar-", ".tmp");
    try {
      Files.write(tmp, bytes);
      Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
    return file;
  }

  /** Code blob {@code digest} from the scheduler, checked against its digest. */
  private byte[] fetchCode(String digest) throws IOException {
    try {
      byte[] bytes =
          WorkersGrpc.newBlockingStub(channel)
              .withCallCredentials(Tokens.bearer(token))
              .withDeadlineAfter(60, TimeUnit.SECONDS)
              .withMaxInboundMessageSize(80 << 20)
              .fetchCode(CodeRequest.newBuilder().setDigest(digest).build())
              .getZip()
              .toByteArray();
      if (!CodeBundle.digest(bytes).equals(digest)) {
        throw new IOException("the code fetched for " + digest + " has another digest");
      }
      return bytes;
    } catch (io.grpc.StatusRuntimeException e) {
      throw new IOException("fetching code " + digest + ": " + e.getStatus().getDescription(), e);
    }
  }

  /** The unpacked code bundle {@code digest}, fetched from the scheduler the first time. */
  private Path code(String digest) throws IOException {
    sweepLock.readLock().lock();
    try {
      return codeHeld(digest);
    } finally {
      sweepLock.readLock().unlock();
    }
  }

  private Path codeHeld(String digest) throws IOException {
    String hex = digest.substring(digest.indexOf(':') + 1);
    if (!hex.matches("[0-9a-f]{64}")) {
      throw new IOException("bad code digest " + digest);
    }
    Path dir = codeDir.resolve(hex);
    if (Files.isDirectory(dir)) {
      return touched(dir);
    }
    CompletableFuture<Path> mine = new CompletableFuture<>();
    CompletableFuture<Path> f = code.putIfAbsent(digest, mine);
    if (f == null) {
      try {
        byte[] zip = fetchCode(digest);
        if (!Files.isDirectory(dir)) {
          CodeBundle.unpack(zip, dir);
        }
        mine.complete(dir);
      } catch (IOException | RuntimeException e) {
        mine.completeExceptionally(e);
      } finally {
        code.remove(digest, mine);
      }
      f = mine;
    }
    try {
      return f.get(120, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      throw new IOException(
          "fetching code " + digest + ": " + e.getCause().getMessage(), e.getCause());
    } catch (InterruptedException | java.util.concurrent.TimeoutException e) {
      throw new IOException("fetching code " + digest + ": " + e, e);
    }
  }

  /**
   * A container restored from the function version's snapshot, taken first if there is none (on
   * this host, or in the image's bucket). A snapshot that cannot be restored here (another runsc,
   * say) is taken again.
   */
  private FunctionContainer fromSnapshot(
      StartContainer s, FunctionContainer.Spec spec, LogSinkToScheduler logs) throws IOException {
    String name = snapshotName(s, spec);
    rt.prepare(spec.image()); // mounting while the snapshot is looked up (and fetched)
    CompletableFuture<Snapshot> f =
        snapshot(
            name,
            spec,
            () -> FunctionContainer.startAndSnapshot(rt, spec, runnerDir, timers, logs, name));
    try {
      Snapshot snap = await(f, name);
      rt.snapshots().touch(snap);
      return FunctionContainer.restore(rt, snap, spec, runnerDir, timers, logs);
    } catch (IOException e) {
      LOG.warn("restoring snapshot {} failed ({}); starting without it", name, e.getMessage());
      snapshots.remove(name, f);
      return FunctionContainer.start(rt, spec, runnerDir, timers, logs);
    }
  }

  /**
   * A container of a Java function restored from a warm JVM of its image (one snapshot per image,
   * JVM and runner on this host, taken on the first start), which then loads the function: a JVM
   * start, the runner's own class loading and its JIT warm-up are paid once per host rather than
   * per container. A snapshot that cannot be restored is taken again; a container that cannot be
   * restored starts without it.
   */
  private FunctionContainer fromWarmJvm(FunctionContainer.Spec spec, LogSinkToScheduler logs)
      throws IOException {
    String name = warmJvmName(spec);
    CompletableFuture<Snapshot> f =
        snapshot(
            name,
            spec,
            () -> {
              Snapshot taken =
                  FunctionContainer.startWarmJvm(
                      rt, spec, runnerDir, emptyCode, timers, logs, name);
              forgetOtherWarmJvms(spec.image(), name);
              return taken;
            });
    try {
      return FunctionContainer.fromWarmJvm(
          rt, await(f, name), spec, runnerDir, emptyCode, timers, logs);
    } catch (FunctionContainer.ImportFailedException e) {
      throw e;
    } catch (IOException e) {
      LOG.warn("starting from warm JVM {} failed ({}); starting without it", name, e.getMessage());
      snapshots.remove(name, f);
      return FunctionContainer.start(rt, spec, runnerDir, timers, logs);
    }
  }

  /**
   * Removes this host's warm JVMs of {@code image} other than {@code kept}: those of an older
   * runner or JVM flags, which nothing restores again. (In a bucket they stay: other hosts may
   * still run the older worker.)
   */
  private void forgetOtherWarmJvms(ImageSpec image, String kept) {
    if (image instanceof ImageSpec.InBucket) {
      return;
    }
    try {
      for (Snapshot old : rt.snapshots().list(image)) {
        if (old.name().startsWith("jvm.") && !old.name().equals(kept)) {
          rt.snapshots().remove(image, old.name());
          LOG.info("removed warm JVM {} of {}: an older runner's", old.name(), image);
        }
      }
    } catch (IOException e) {
      LOG.warn("removing older warm JVMs of {}: {}", image, e.toString());
    }
  }

  /** A snapshot's name for a warm JVM: the image, the JVM, the runner and its command line. */
  private String warmJvmName(FunctionContainer.Spec spec) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update((spec.image() + "\0" + spec.interpreter()).getBytes(StandardCharsets.UTF_8));
      md.update(
          String.join("\0", JavaRunnerJars.command(spec.interpreter(), "-", false, 1))
              .getBytes(StandardCharsets.UTF_8));
      md.update(runnerDigest);
      return "jvm." + HexFormat.of().formatHex(md.digest()).substring(0, 16);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Snapshot {@code name} of the spec's image: found on this host or in its bucket, else taken. */
  private CompletableFuture<Snapshot> snapshot(
      String name, FunctionContainer.Spec spec, SnapshotTaker take) throws IOException {
    CompletableFuture<Snapshot> mine = new CompletableFuture<>();
    CompletableFuture<Snapshot> f = snapshots.putIfAbsent(name, mine);
    if (f != null) {
      return f;
    }
    try {
      Snapshot found = null;
      try {
        found = rt.snapshots().find(spec.image(), name);
      } catch (IOException e) {
        LOG.debug("no snapshot {} yet: {}", name, e.getMessage());
      }
      mine.complete(found != null ? found : take.take());
    } catch (IOException | RuntimeException e) {
      snapshots.remove(name, mine);
      mine.completeExceptionally(e);
      throw e;
    }
    return mine;
  }

  /** Takes a snapshot. */
  @FunctionalInterface
  private interface SnapshotTaker {
    Snapshot take() throws IOException;
  }

  private static Snapshot await(CompletableFuture<Snapshot> f, String name) throws IOException {
    try {
      return f.get(10, TimeUnit.MINUTES);
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof IOException io) {
        throw io;
      }
      throw new IOException(e.getCause());
    } catch (InterruptedException | java.util.concurrent.TimeoutException e) {
      throw new IOException("waiting for snapshot " + name + ": " + e, e);
    }
  }

  /**
   * A snapshot's name: the function, its version, and a digest of everything baked into the
   * snapshot (the spec, the environment with secrets, the runner), so a change makes a new one.
   */
  private String snapshotName(StartContainer s, FunctionContainer.Spec spec) throws IOException {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(s.getFunction().getSpec().toByteArray());
      md.update(
          String.join("\0", spec.sandboxOptions(runnerDir).env()).getBytes(StandardCharsets.UTF_8));
      md.update(runnerDigest);
      md.update(String.join("\0", spec.command()).getBytes(StandardCharsets.UTF_8));
      String fn = s.getFunction().getId().replace('/', '.');
      return ("fn." + fn).substring(0, Math.min(40, 3 + fn.length()))
          + ".v"
          + s.getFunction().getVersion()
          + "."
          + HexFormat.of().formatHex(md.digest()).substring(0, 12);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static byte[] digestOf(Path dir) throws IOException {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      try (var files = Files.walk(dir)) {
        for (Path f : files.filter(Files::isRegularFile).sorted().toList()) {
          md.update(dir.relativize(f).toString().getBytes(StandardCharsets.UTF_8));
          md.update(Files.readAllBytes(f));
        }
      }
      return md.digest();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private void run(RunInput in) {
    FunctionContainer c = containers.get(in.getContainerId());
    if (c == null) {
      String why = "container " + in.getContainerId() + " is not on this worker";
      done(
          in,
          Result.newBuilder()
              .setStatus(Status.INTERNAL)
              .setFailure(Failure.newBuilder().setType("ContainerGone").setMessage(why))
              .build(),
          why);
      return;
    }
    if (!in.getInput().getPayload().isEmpty()) {
      payloadIo.execute(() -> runPayload(c, in));
      return;
    }
    if (in.getInput().hasRaw()) {
      run(in, c.callRaw(in.getCallId(), in.getInput().getRaw(), timeout(in)));
      return;
    }
    // the scheduler checked the arguments are JSON when it accepted the call
    run(c, in, in.getInput().getArgsJson(), in.getInput().getKwargsJson());
  }

  private static Duration timeout(RunInput in) {
    return Duration.ofMillis(in.getTimeoutMs());
  }

  /** Fetches a call's input from the payload store, then runs it. */
  private void runPayload(FunctionContainer c, RunInput in) {
    ByteString args;
    ByteString kwargs;
    try {
      byte[] data =
          Payloads.download(
              WorkersGrpc.newBlockingStub(channel)
                  .withCallCredentials(Tokens.bearer(token))
                  .withDeadlineAfter(5, TimeUnit.MINUTES)
                  .getPayload(PayloadRef.newBuilder().setName(in.getInput().getPayload()).build()));
      if (in.getInput().getPayloadRaw()) {
        run(in, c.callRaw(in.getCallId(), UnsafeByteOperations.unsafeWrap(data), timeout(in)));
        return;
      }
      JsonNode doc = JSON.readTree(data);
      JsonNode a = doc.path("args");
      JsonNode k = doc.path("kwargs");
      if (!(a.isMissingNode() || a.isArray()) || !(k.isMissingNode() || k.isObject())) {
        throw new IllegalArgumentException(
            "the payload is not {\"args\": [...], \"kwargs\": {...}}");
      }
      args = a.isMissingNode() ? ByteString.EMPTY : ByteString.copyFromUtf8(a.toString());
      kwargs = k.isMissingNode() ? ByteString.EMPTY : ByteString.copyFromUtf8(k.toString());
    } catch (IOException | RuntimeException e) {
      // a payload that cannot be had is the call's failure, not the container's
      done(
          in,
          Result.newBuilder()
              .setStatus(Status.INTERNAL)
              .setFailure(
                  Failure.newBuilder()
                      .setType("PayloadUnavailable")
                      .setMessage(
                          "the input's payload "
                              + in.getInput().getPayload()
                              + ": "
                              + e.getMessage()))
              .build());
      return;
    }
    run(c, in, args, kwargs);
  }

  private void run(FunctionContainer c, RunInput in, ByteString args, ByteString kwargs) {
    run(in, c.call(in.getCallId(), args, kwargs, timeout(in)));
  }

  /** Reports a call's outcome when it comes, its output through the payload store if large. */
  private void run(RunInput in, CompletableFuture<Outcome> outcome) {
    outcome.thenAccept(
        o -> {
          String ended =
              switch (o) {
                case Outcome.TimedOut t -> "a call timed out";
                case Outcome.OutOfMemory m -> "it ran out of memory";
                case Outcome.Crashed x -> x.why();
                default -> "";
              };
          Result r = result(o);
          if (r.getOutputJson().size() > Payloads.INLINE_MAX
              || r.getOutputRaw().size() > Payloads.INLINE_MAX) {
            payloadIo.execute(() -> done(in, asPayload(r), ended));
          } else {
            done(in, r, ended);
          }
        });
  }

  /** A result whose output goes to the payload store, the result carrying its name. */
  private Result asPayload(Result r) {
    try {
      String name =
          Payloads.upload(
              WorkersGrpc.newStub(channel)
                      .withCallCredentials(Tokens.bearer(token))
                      .withDeadlineAfter(5, TimeUnit.MINUTES)
                  ::putPayload,
              r.hasOutputRaw() ? r.getOutputRaw() : r.getOutputJson());
      return r.hasOutputRaw()
          ? r.toBuilder().clearOutputRaw().setOutputPayload(name).setOutputPayloadRaw(true).build()
          : r.toBuilder().clearOutputJson().setOutputPayload(name).build();
    } catch (IOException | RuntimeException e) {
      return Result.newBuilder()
          .setStatus(Status.INTERNAL)
          .setFailure(
              Failure.newBuilder()
                  .setType("PayloadUnavailable")
                  .setMessage("the output could not be stored as a payload: " + e.getMessage()))
          .setDurationUs(r.getDurationUs())
          .build();
    }
  }

  static Result result(Outcome o) {
    return switch (o) {
      case Outcome.Success s when s.raw() ->
          Result.newBuilder()
              .setStatus(Status.SUCCESS)
              .setOutputRaw(s.json())
              .setDurationUs(Math.max(1, s.micros()))
              .build();
      case Outcome.Success s ->
          Result.newBuilder()
              .setStatus(Status.SUCCESS)
              .setOutputJson(s.json())
              .setDurationUs(Math.max(1, s.micros()))
              .build();
      case Outcome.HandlerError e ->
          Result.newBuilder()
              .setStatus(Status.HANDLER_ERROR)
              .setFailure(
                  Failure.newBuilder()
                      .setType(e.type())
                      .setMessage(e.message())
                      .setTraceback(e.traceback()))
              .setDurationUs(e.micros())
              .build();
      case Outcome.TimedOut t ->
          Result.newBuilder()
              .setStatus(Status.TIMEOUT)
              .setFailure(
                  Failure.newBuilder()
                      .setType("Timeout")
                      .setMessage("the call ran past its timeout of " + t.timeoutMillis() + " ms"))
              .build();
      case Outcome.OutOfMemory m ->
          Result.newBuilder()
              .setStatus(Status.OUT_OF_MEMORY)
              .setFailure(
                  Failure.newBuilder()
                      .setType("OutOfMemory")
                      .setMessage("the container ran out of its memory limit"))
              .build();
      case Outcome.Crashed c ->
          Result.newBuilder()
              .setStatus(Status.INTERNAL)
              .setFailure(Failure.newBuilder().setType("ContainerCrashed").setMessage(c.why()))
              .build();
    };
  }

  private void done(RunInput in, Result r) {
    done(in, r, "");
  }

  /**
   * Reports a call's end; {@code containerEnded} says why its container died with it, or "". Ends
   * that come together go to the scheduler in one message.
   */
  private void done(RunInput in, Result r, String containerEnded) {
    dones.add(
        InputDone.newBuilder()
            .setContainerId(in.getContainerId())
            .setResult(r.toBuilder().setCallId(in.getCallId()))
            .setContainerEnded(containerEnded)
            .build());
  }

  /** Releases the GPUs container {@code id} held, if any. */
  private void releaseGpus(String id) {
    GpuClaims.Claim c = gpuClaims.remove(id);
    if (c != null) {
      c.close();
    }
  }

  private void failed(String id, Failure f) {
    releaseGpus(id);
    send(
        WorkerMessage.newBuilder()
            .setFailed(ContainerFailed.newBuilder().setContainerId(id).setFailure(f))
            .build());
  }

  private void exited(String id, String why) {
    releaseGpus(id);
    send(
        WorkerMessage.newBuilder()
            .setExited(ContainerExited.newBuilder().setContainerId(id).setWhy(why))
            .build());
  }

  private final class LogSinkToScheduler implements FunctionContainer.LogSink {
    private final String containerId;

    LogSinkToScheduler(String containerId) {
      this.containerId = containerId;
    }

    @Override
    public void line(String sandbox, String call, String line) {
      send(
          WorkerMessage.newBuilder()
              .setLog(
                  LogLine.newBuilder()
                      .setContainerId(containerId)
                      .setCallId(call)
                      .setLine(line)
                      .setTimeMs(System.currentTimeMillis()))
              .build());
    }
  }

  private void stopAll() {
    for (String id : List.copyOf(containers.keySet())) {
      FunctionContainer c = containers.remove(id);
      if (c != null) {
        starts.execute(
            () -> {
              closeQuietly(c);
              releaseGpus(id);
            });
      }
    }
  }

  private static void closeQuietly(FunctionContainer c) {
    try {
      c.close();
    } catch (IOException | RuntimeException e) {
      LOG.warn("closing container {}: {}", c.id(), e.toString());
    }
  }

  /** Detaches, stops every container, and waits (a while) for them to go. */
  @Override
  public void close() {
    closed = true;
    synchronized (sendLock) {
      if (up != null) {
        try {
          up.onCompleted();
        } catch (RuntimeException ignored) {
          // the stream is gone already
        }
        up = null;
      }
    }
    stopAll();
    starts.shutdown();
    builds.shutdownNow();
    payloadIo.shutdownNow();
    try {
      if (!starts.awaitTermination(60, TimeUnit.SECONDS)) {
        starts.shutdownNow();
      }
    } catch (InterruptedException e) {
      starts.shutdownNow();
      Thread.currentThread().interrupt();
    }
    timers.shutdownNow();
  }
}
