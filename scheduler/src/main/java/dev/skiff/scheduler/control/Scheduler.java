package dev.skiff.scheduler.control;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.api.GpuRequest;
import dev.skiff.api.ImageSpec;
import dev.skiff.scheduler.CodeBundle;
import dev.skiff.scheduler.Payloads;
import dev.skiff.scheduler.proto.Assignment;
import dev.skiff.scheduler.proto.BuildEvent;
import dev.skiff.scheduler.proto.BuildImageRequest;
import dev.skiff.scheduler.proto.BuildProgress;
import dev.skiff.scheduler.proto.CallInfo;
import dev.skiff.scheduler.proto.CallRecord;
import dev.skiff.scheduler.proto.ContainerInfo;
import dev.skiff.scheduler.proto.DeployResponse;
import dev.skiff.scheduler.proto.Failure;
import dev.skiff.scheduler.proto.Function;
import dev.skiff.scheduler.proto.FunctionInfo;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.InputDone;
import dev.skiff.scheduler.proto.LogLine;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.RetryPolicy;
import dev.skiff.scheduler.proto.RunBatch;
import dev.skiff.scheduler.proto.RunInput;
import dev.skiff.scheduler.proto.StartContainer;
import dev.skiff.scheduler.proto.Status;
import dev.skiff.scheduler.proto.StopContainer;
import dev.skiff.scheduler.proto.WorkerInfo;
import dev.skiff.scheduler.proto.WorkerMessage;
import dev.skiff.scheduler.state.ControlState;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The scheduler's core: functions, accepted calls, the workers attached and their containers,
 * placement, autoscaling and retries.
 *
 * <p><b>Calls.</b> An input is accepted once the {@link ControlState} has recorded it durably; from
 * then on it is in memory as a live call until it finishes. A finished call's record goes to the
 * state through the {@link StateWriter} (many at one commit), and whoever waits for the result
 * hears it only once it is durable: a scheduler killed and restarted runs again every call it had
 * not finished, and reports no call twice.
 *
 * <p><b>Placement.</b> An input goes to a ready container of its function version with a free slot
 * (a container runs up to {@code concurrency} calls), the least busy first. When the backlog needs
 * more containers, one is started on a worker whose free CPUs, memory and GPUs fit the function
 * (GPU requests tried in rank order): a worker that already has the image first, then the least
 * loaded. What no worker can take now stays queued and says why ({@link FunctionInfo#getWaiting}):
 * "no worker has an H100" differs from "every worker that could is full".
 *
 * <p><b>Autoscaling.</b> The latest version of a function keeps {@code min} containers, plus {@code
 * buffer} while it has work; containers start for the backlog (in parallel, up to {@code max}); a
 * container idle for the scale-down window beyond what is wanted stops. Containers of an older
 * version serve the calls accepted for it, then stop.
 *
 * <p><b>Retries.</b> A handler's error, timeout or memory kill is tried again under the function's
 * policy (count, backoff, delays); the timeout is per attempt. An attempt lost to the platform (a
 * worker gone, a container that crashed) is tried again without counting against the policy, up to
 * {@link #PLATFORM_ATTEMPTS} times.
 *
 * <p>Thread safe: one lock guards the structures in memory; under it nothing waits on the network
 * or the disk but sends to workers, which only queue.
 */
public final class Scheduler implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Scheduler.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9_-]{0,62}");
  private static final Pattern HANDLER =
      Pattern.compile("[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*");
  private static final Pattern JAVA_HANDLER =
      Pattern.compile(
          "[A-Za-z_$][A-Za-z0-9_$]*(\\.[A-Za-z_$][A-Za-z0-9_$]*)*(::|#)[A-Za-z_$][A-Za-z0-9_$]*");
  private static final Pattern CODE_DIGEST = Pattern.compile("sha256:[0-9a-f]{64}");
  private static final Pattern ENV_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");

  /** How many attempts of a call the platform may lose before the call fails as INTERNAL. */
  static final int PLATFORM_ATTEMPTS = 5;

  /** How many times in a row a function's containers may fail to start before its calls fail. */
  static final int START_FAILURES = 3;

  static final int DEFAULT_MAX_CONTAINERS = 20;
  static final double PIPELINE_BELOW_MICROS = 2000;

  /**
   * What a call costs a container beyond its handler (the runner's channel, gVisor's system calls),
   * as measured on a 2-core host: one container serves about 5,000 trivial calls a second.
   */
  static final double CALL_OVERHEAD_MICROS = 200;

  static final int MAX_PIPELINE = 32;

  private volatile Predicate<String> payloadExists = name -> false;

  /** How long a finished call (its result) is kept; its large payloads are kept as long. */
  static final Duration KEEP_RESULTS = Duration.ofDays(1);

  static final Duration DEFAULT_SCALEDOWN = Duration.ofSeconds(60);
  static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(300);

  /**
   * Failure types a worker reports when a container cannot start for a reason that will not pass.
   */
  public static final String IMPORT_FAILED = "ImportFailed";

  public static final String NO_SUCH_IMAGE = "NoSuchImage";

  private enum CState {
    STARTING,
    READY,
    STOPPING
  }

  private final class WorkerConn {
    final String id;
    final double cpus;
    final long memory;
    final List<String> gpus;
    boolean gpusWithoutGvisor; // as its hello said
    // its GPUs' latest samples, by position
    final Map<Integer, dev.skiff.scheduler.proto.GpuSample> gpuSamples = new HashMap<>();
    final Set<String> images;
    final StreamObserver<dev.skiff.scheduler.proto.Assignment> out;
    final Map<String, Ctr> containers = new LinkedHashMap<>();
    final List<RunInput> outbox = new ArrayList<>(); // assigned, to be sent by flushRuns
    long lastSeen;

    WorkerConn(
        String id,
        double cpus,
        long memory,
        List<String> gpus,
        Set<String> images,
        StreamObserver<Assignment> out) {
      this.id = id;
      this.cpus = cpus;
      this.memory = memory;
      this.gpus = gpus;
      this.images = images;
      this.out = out;
    }

    double usedCpus() {
      return containers.values().stream()
          .mapToDouble(c -> c.fn.getSpec().getResources().getCpus())
          .sum();
    }

    long usedMemory() {
      return containers.values().stream()
          .mapToLong(c -> c.fn.getSpec().getResources().getMemoryBytes())
          .sum();
    }

    Set<Integer> usedGpus() {
      Set<Integer> used = new HashSet<>();
      containers.values().forEach(c -> used.addAll(c.gpus));
      return used;
    }

    void send(Assignment a) {
      try {
        out.onNext(a);
      } catch (RuntimeException e) {
        LOG.warn("sending to worker {}: {}", id, e.toString());
      }
    }
  }

  private static final class Ctr {
    final String id;
    final WorkerConn worker;
    final Function fn;
    final List<Integer> gpus;
    final int slots;
    final long startedAt;
    final Set<String> running = new LinkedHashSet<>();
    CState state = CState.STARTING;
    long idleSince;
    int calls;
    int finished; // calls that ended here

    Ctr(String id, WorkerConn worker, Function fn, List<Integer> gpus, long now) {
      this.id = id;
      this.worker = worker;
      this.fn = fn;
      this.gpus = gpus;
      this.slots = Math.max(1, fn.getSpec().getConcurrency());
      this.startedAt = now;
    }

    /** Whether it takes another call with {@code extra} calls queued beyond its slots. */
    boolean free(int extra) {
      return state == CState.READY && running.size() < slots + extra;
    }
  }

  private static final class Call {
    CallRecord record;
    final Function fn;
    Ctr container;

    Call(CallRecord record, Function fn) {
      this.record = record;
      this.fn = fn;
    }
  }

  private static final class Queue {
    final Function fn;
    final Deque<String> pending = new ArrayDeque<>();
    String waiting = "";
    int startFailures;
    double meanMicros; // of the handler's calls, a moving average; 0 until one finished
    boolean meanOfFirstCalls; // meanMicros is a container's first call's, a stand-in
    double startMillis = 1000; // of a container's start, a moving average

    void started(long millis) {
      startMillis = 0.7 * startMillis + 0.3 * Math.max(50, millis);
    }

    /**
     * A call of {@code micros} ended; {@code first}: the first of its container, which pays the
     * container's warm-up (a JVM loads and compiles the handler's classes then) and stands in for
     * the handler's time only until a later call says what it is.
     */
    void ran(long micros, boolean first) {
      if (first) {
        if (meanMicros == 0) {
          meanMicros = micros;
          meanOfFirstCalls = true;
        }
        return;
      }
      if (meanMicros == 0 || meanOfFirstCalls) {
        meanMicros = micros;
        meanOfFirstCalls = false;
      } else {
        meanMicros = 0.9 * meanMicros + 0.1 * micros;
      }
    }

    /**
     * How many calls a container may hold beyond its slots, waiting in its runner's pipe: none for
     * handlers that take milliseconds (a queued call would wait behind one), more the shorter the
     * handler, so that a stream of short calls reaches the runner in batches.
     */
    int pipeline() {
      if (meanMicros <= 0 || meanMicros >= PIPELINE_BELOW_MICROS) {
        return 0;
      }
      return (int) Math.min(MAX_PIPELINE, PIPELINE_BELOW_MICROS / Math.max(meanMicros, 1));
    }

    Queue(Function fn) {
      this.fn = fn;
    }
  }

  private final ControlState state;
  private final InstantSource clock;
  private final ScheduledExecutorService timers;
  private final StateWriter writer;
  private final LogHub logs = new LogHub();
  private final Map<String, WorkerConn> workers = new LinkedHashMap<>();
  private final Map<String, Ctr> containers = new LinkedHashMap<>();
  private final Map<String, String> containerFunctions = new ConcurrentHashMap<>();
  private final Map<String, Queue> queues = new LinkedHashMap<>();
  private final Map<String, Function> latest = new HashMap<>();
  private final Map<String, Call> live = new ConcurrentHashMap<>();
  private final Map<String, CallRecord> finishing = new ConcurrentHashMap<>();
  private final Map<String, CompletableFuture<Result>> waiters = new ConcurrentHashMap<>();
  private final ScheduledFuture<?> autoscaler;
  private final ScheduledFuture<?> forgetter;
  private final ScheduledFuture<?> logFlusher;
  private boolean closed;

  /**
   * A scheduler on {@code state}: the calls it had not finished are queued again. {@code timers}
   * runs the autoscaler (every second) and retry delays.
   */
  public Scheduler(ControlState state, InstantSource clock, ScheduledExecutorService timers)
      throws IOException {
    this.state = state;
    this.clock = clock;
    this.timers = timers;
    this.writer = new StateWriter(state);
    synchronized (this) {
      for (Function f : state.functions()) {
        latest.put(f.getId(), f);
      }
      for (CallRecord r : state.unfinished()) {
        Optional<Function> fn = state.function(r.getFunctionId(), r.getVersion());
        if (fn.isEmpty()) {
          LOG.error(
              "call {} is of {} v{}, which is not recorded",
              r.getCallId(),
              r.getFunctionId(),
              r.getVersion());
          continue;
        }
        Call call = new Call(r.toBuilder().setStatus(Status.PENDING).build(), fn.get());
        live.put(r.getCallId(), call);
        queue(fn.get()).pending.add(r.getCallId());
      }
      if (!live.isEmpty()) {
        LOG.info("{} calls accepted before a restart are queued again", live.size());
      }
    }
    this.autoscaler = timers.scheduleWithFixedDelay(this::autoscale, 1, 1, TimeUnit.SECONDS);
    this.forgetter = timers.scheduleWithFixedDelay(this::forgetOld, 1, 10, TimeUnit.MINUTES);
    this.logFlusher = timers.scheduleWithFixedDelay(logs::flush, 1, 1, TimeUnit.SECONDS);
  }

  /** Forgets calls that finished more than {@link #KEEP_RESULTS} ago, in batches. */
  private void forgetOld() {
    try {
      long before = now() - KEEP_RESULTS.toMillis();
      int n;
      int total = 0;
      do {
        n = state.forgetFinished(before, 10_000);
        total += n;
      } while (n == 10_000 && !closed);
      if (total > 0) {
        LOG.info("forgot {} calls that finished over {} h ago", total, KEEP_RESULTS.toHours());
      }
    } catch (IOException | RuntimeException e) {
      LOG.warn("cannot forget old calls: {}", e.toString());
    }
  }

  private static String key(Function f) {
    return f.getId() + "@" + f.getVersion();
  }

  private Queue queue(Function fn) {
    return queues.computeIfAbsent(key(fn), k -> new Queue(fn));
  }

  private long now() {
    return clock.millis();
  }

  private boolean isLatest(Function f) {
    Function l = latest.get(f.getId());
    return l != null && l.getVersion() == f.getVersion();
  }

  // ---- functions --------------------------------------------------------------------------------

  /**
   * Validates a function, stores its code bundle (if any) and records it as a new version. The
   * warning says what placement already knows it cannot do now.
   */
  public DeployResponse deploy(FunctionSpec spec, byte[] code) throws IOException {
    if (!NAME.matcher(spec.getApp()).matches() || !NAME.matcher(spec.getName()).matches()) {
      throw new IllegalArgumentException(
          "bad function name '"
              + spec.getApp()
              + "/"
              + spec.getName()
              + "': want APP/NAME of lower-case letters, digits, '-' and '_'");
    }
    ImageSpec.parse(spec.getImage());
    switch (spec.getLanguage()) {
      case "python" -> {
        if (!HANDLER.matcher(spec.getHandler()).matches()) {
          throw new IllegalArgumentException(
              "bad handler '" + spec.getHandler() + "': want module:function");
        }
        if (spec.getClasspathCount() > 0) {
          throw new IllegalArgumentException("a class path is for Java functions only");
        }
      }
      case "java" -> {
        if (!JAVA_HANDLER.matcher(spec.getHandler()).matches()) {
          throw new IllegalArgumentException(
              "bad handler '"
                  + spec.getHandler()
                  + "': want CLASS::METHOD (static) or CLASS#METHOD (on an instance)");
        }
        if (code.length > 0) {
          throw new IllegalArgumentException(
              "a Java function's code travels as its class path (PutCode), not as a bundle");
        }
        List<String> missing = missingCode(spec.getClasspathList());
        if (!missing.isEmpty()) {
          throw new IllegalArgumentException(
              "the class path names code this scheduler does not have (upload it with PutCode"
                  + " first): "
                  + String.join(", ", missing));
        }
      }
      default ->
          throw new IllegalArgumentException(
              "unknown language '" + spec.getLanguage() + "': want python or java");
    }
    if (spec.getStopped()) {
      throw new IllegalArgumentException("a function is deployed running; StopApp stops it");
    }
    var r = spec.getResources();
    if (r.getCpus() < 0 || r.getMemoryBytes() < 0) {
      throw new IllegalArgumentException("CPU and memory requests must not be negative");
    }
    r.getGpuList().forEach(GpuRequest::parse);
    var a = spec.getAutoscaling();
    if (a.getMinContainers() < 0
        || a.getMaxContainers() < 0
        || a.getBufferContainers() < 0
        || (a.getMaxContainers() > 0 && a.getMinContainers() > a.getMaxContainers())) {
      throw new IllegalArgumentException(
          "container counts must not be negative, and min must not exceed max");
    }
    if (spec.getConcurrency() < 0 || spec.getConcurrency() > 1000) {
      throw new IllegalArgumentException("concurrency must be 1 to 1000");
    }
    RetryPolicy p = spec.getRetries();
    if (p.getMaxRetries() < 0 || p.getMaxRetries() > 100 || p.getBackoff() < 0) {
      throw new IllegalArgumentException("retries must be 0 to 100, with a backoff of at least 1");
    }
    for (String k : spec.getEnvMap().keySet()) {
      if (!ENV_NAME.matcher(k).matches()) {
        throw new IllegalArgumentException("bad environment variable name '" + k + "'");
      }
    }
    for (String s : spec.getSecretsList()) {
      if (state.secret(s).isEmpty()) {
        throw new IllegalArgumentException(
            "no secret '" + s + "' (create it first with skiff secret create)");
      }
    }
    FunctionSpec.Builder b = spec.toBuilder().setCodeDigest("");
    if (code.length > 0) {
      String digest = CodeBundle.check(code);
      state.putBlob(digest, code, now());
      b.setCodeDigest(digest);
    }
    FunctionSpec wanted = b.build();
    synchronized (this) {
      Function same = latest.get(wanted.getApp() + "/" + wanted.getName());
      if (same != null && same.getSpec().equals(wanted)) {
        // the same function again (a program deploying on every start): no new version, so its
        // warm containers serve on
        return DeployResponse.newBuilder()
            .setFunction(same)
            .setWarning(neverFits(same).orElse(""))
            .build();
      }
    }
    Function f = state.deploy(wanted, now());
    synchronized (this) {
      latest.put(f.getId(), f);
      queue(f);
      pump();
      return DeployResponse.newBuilder().setFunction(f).setWarning(neverFits(f).orElse("")).build();
    }
  }

  /** The latest version of a function, or a NOT_FOUND error. */
  public synchronized Function function(String id) {
    Function f = latest.get(id);
    if (f == null) {
      throw io.grpc.Status.NOT_FOUND
          .withDescription("no function " + id + " (deploy it first)")
          .asRuntimeException();
    }
    return f;
  }

  /** Of {@code digests}, those of code this scheduler does not have (a bad digest is an error). */
  public List<String> missingCode(List<String> digests) throws IOException {
    List<String> missing = new ArrayList<>();
    for (String d : digests) {
      if (!CODE_DIGEST.matcher(d).matches()) {
        throw new IllegalArgumentException("bad code digest '" + d + "': want sha256:HEX");
      }
      if (!state.hasBlob(d)) {
        missing.add(d);
      }
    }
    // what the client will not upload, because it is here, stays for the deploy that follows
    state.touchBlobs(digests, now());
    return missing;
  }

  /** How long code no function needs is kept after it was last stored or asked for. */
  public static final Duration CODE_KEEP = Duration.ofDays(1);

  /**
   * Removes the code (bundles, class path jars, build contexts) that no function needs, stored or
   * asked for more than {@link #CODE_KEEP} before now: a function needs its code while it is the
   * latest running version of its function, or has calls or containers. A scheduler that takes the
   * dev loop's deploys for weeks keeps what runs, not every edit. Returns how many went.
   */
  public int sweepCode() throws IOException {
    java.util.Set<String> needed = new HashSet<>();
    synchronized (this) {
      for (Function f : latest.values()) {
        if (!f.getSpec().getStopped()) {
          codeOf(f, needed);
        }
      }
      for (Queue q : queues.values()) {
        if (!q.pending.isEmpty()) {
          codeOf(q.fn, needed);
        }
      }
      for (Call c : live.values()) {
        codeOf(c.fn, needed);
      }
      for (WorkerConn w : workers.values()) {
        for (Ctr c : w.containers.values()) {
          codeOf(c.fn, needed);
        }
      }
    }
    long before = now() - CODE_KEEP.toMillis();
    List<String> gone =
        state.blobsStoredBefore(before).stream().filter(d -> !needed.contains(d)).toList();
    int removed = gone.isEmpty() ? 0 : state.removeBlobs(gone, before);
    if (removed > 0) {
      LOG.info("removed {} code bundles and jars no function needs", removed);
    }
    return removed;
  }

  private static void codeOf(Function f, java.util.Set<String> into) {
    if (!f.getSpec().getCodeDigest().isEmpty()) {
      into.add(f.getSpec().getCodeDigest());
    }
    into.addAll(f.getSpec().getClasspathList());
  }

  /** Stores a jar of a Java class path; returns its digest. */
  public String putCode(byte[] jar) throws IOException {
    String digest = CodeBundle.checkJar(jar);
    state.putBlob(digest, jar, now());
    return digest;
  }

  /**
   * Stops every running function of {@code app}: each gets a new, stopped version, which refuses
   * calls and wants no containers, so the old version's containers drain as after a redeploy.
   * Returns the ids of the functions stopped.
   */
  public List<String> stopApp(String app) throws IOException {
    List<Function> running;
    synchronized (this) {
      running =
          latest.values().stream()
              .filter(f -> f.getSpec().getApp().equals(app) && !f.getSpec().getStopped())
              .toList();
    }
    List<String> stopped = new ArrayList<>();
    for (Function f : running) {
      Function s = state.deploy(f.getSpec().toBuilder().setStopped(true).build(), now());
      synchronized (this) {
        latest.put(s.getId(), s);
        queue(s);
        pump();
      }
      stopped.add(s.getId());
    }
    return stopped;
  }

  /** A code bundle by digest, or empty. */
  public Optional<byte[]> code(String digest) throws IOException {
    return state.blob(digest);
  }

  /** Creates or replaces a secret; returns every secret's name. */
  public List<String> putSecret(String name, Map<String, String> values) throws IOException {
    if (!NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(
          "bad secret name '" + name + "': lower-case letters, digits, '-' and '_'");
    }
    if (values.isEmpty()) {
      throw new IllegalArgumentException("a secret needs at least one KEY=VALUE");
    }
    for (String k : values.keySet()) {
      if (!ENV_NAME.matcher(k).matches()) {
        throw new IllegalArgumentException(
            "bad secret key '" + k + "': want an environment variable name");
      }
    }
    state.putSecret(name, values);
    return state.secrets();
  }

  public List<String> secrets() throws IOException {
    return state.secrets();
  }

  // ---- calls ------------------------------------------------------------------------------------

  /**
   * Accepts inputs for the latest version of {@code functionId}; returns their call ids in order.
   */
  public List<String> submit(String functionId, List<Input> inputs) throws IOException {
    Function f = function(functionId);
    if (f.getSpec().getStopped()) {
      throw io.grpc.Status.FAILED_PRECONDITION
          .withDescription(
              "function "
                  + functionId
                  + " was stopped (the run of its app ended); deploy it again to call it")
          .asRuntimeException();
    }
    for (Input in : inputs) {
      check(in);
    }
    List<CallRecord> accepted = state.accept(f, inputs, now());
    List<String> ids = new ArrayList<>(accepted.size());
    synchronized (this) {
      if (closed) {
        throw io.grpc.Status.UNAVAILABLE
            .withDescription("the scheduler is stopping")
            .asRuntimeException();
      }
      Queue q = queue(f);
      for (CallRecord r : accepted) {
        live.put(r.getCallId(), new Call(r, f));
        q.pending.add(r.getCallId());
        ids.add(r.getCallId());
      }
      pump();
    }
    return ids;
  }

  private void check(Input in) {
    boolean json = !in.getArgsJson().isEmpty() || !in.getKwargsJson().isEmpty();
    if (in.hasRaw()) {
      if (json || !in.getPayload().isEmpty()) {
        throw new IllegalArgumentException(
            "an input is raw bytes, a payload or inline JSON, one of them");
      }
      if (in.getRaw().size() > Payloads.INLINE_MAX) {
        throw io.grpc.Status.RESOURCE_EXHAUSTED
            .withDescription(
                "raw input of "
                    + in.getRaw().size()
                    + " bytes is over the 2 MiB a call carries inline (larger inputs go as a"
                    + " payload, as Skiff's clients send them)")
            .asRuntimeException();
      }
      return;
    }
    if (in.getPayloadRaw() && in.getPayload().isEmpty()) {
      throw new IllegalArgumentException("payload_raw without a payload");
    }
    if (!in.getPayload().isEmpty()) {
      if (json) {
        throw new IllegalArgumentException("an input is either a payload or inline JSON, not both");
      }
      if (!payloadExists.test(in.getPayload())) {
        throw new IllegalArgumentException(
            "no payload " + in.getPayload() + " (upload it with PutPayload first)");
      }
      return; // the worker parses it: it may be as large as a payload may be
    }
    long size = (long) in.getArgsJson().size() + in.getKwargsJson().size();
    if (size > Payloads.INLINE_MAX) {
      throw io.grpc.Status.RESOURCE_EXHAUSTED
          .withDescription(
              "an input of "
                  + size
                  + " bytes is over the 2 MiB a call carries inline (larger inputs go as a"
                  + " payload, as Skiff's clients send them)")
          .asRuntimeException();
    }
    checkJson(in.getArgsJson(), com.fasterxml.jackson.core.JsonToken.START_ARRAY, "args", "array");
    checkJson(
        in.getKwargsJson(), com.fasterxml.jackson.core.JsonToken.START_OBJECT, "kwargs", "object");
  }

  /**
   * Checks that {@code json} (empty: none) is one JSON value that starts with {@code start}, by
   * reading its tokens without building it: no tree or strings made of a large input.
   */
  private static void checkJson(
      com.google.protobuf.ByteString json,
      com.fasterxml.jackson.core.JsonToken start,
      String what,
      String kind) {
    if (json.isEmpty()) {
      return;
    }
    try (var p = JSON.getFactory().createParser(json.newInput())) {
      if (p.nextToken() != start) {
        throw new IllegalArgumentException(what + " must be a JSON " + kind);
      }
      p.skipChildren(); // every token read once: the parser checks the syntax as it goes
      if (p.nextToken() != null) {
        throw new IllegalArgumentException(what + " must be one JSON " + kind + ", and no more");
      }
    } catch (IOException e) {
      throw new IllegalArgumentException("the input's " + what + " is not JSON: " + e.getMessage());
    }
  }

  /** Where payloads are looked up (the server's {@link PayloadStore}); none by default. */
  void payloads(Predicate<String> exists) {
    this.payloadExists = exists;
  }

  /** The result of a call, completed once it is final and durable. */
  public CompletableFuture<Result> result(String callId) throws IOException {
    CompletableFuture<Result> f = waiters.computeIfAbsent(callId, k -> new CompletableFuture<>());
    if (live.containsKey(callId) || finishing.containsKey(callId)) {
      return f; // finish() completes it
    }
    Optional<CallRecord> r = state.call(callId);
    if (r.isPresent() && ControlState.finished(r.get().getStatus())) {
      waiters.remove(callId, f);
      f.complete(resultOf(r.get()));
      return f;
    }
    if (live.containsKey(callId) || finishing.containsKey(callId)) {
      return f;
    }
    waiters.remove(callId, f);
    throw noCall(callId);
  }

  /** A call's result now: final, or its status so far. */
  public Result peek(String callId) throws IOException {
    Call live = this.live.get(callId);
    if (live != null) {
      synchronized (this) {
        return resultOf(live.record);
      }
    }
    CallRecord r = state.call(callId).orElseThrow(() -> noCall(callId));
    return resultOf(r);
  }

  private static io.grpc.StatusRuntimeException noCall(String callId) {
    return io.grpc.Status.NOT_FOUND
        .withDescription(
            "no call " + callId + " (finished calls are kept for " + KEEP_RESULTS.toHours() + " h)")
        .asRuntimeException();
  }

  private static Result resultOf(CallRecord r) {
    Result.Builder b =
        ControlState.finished(r.getStatus()) ? r.getResult().toBuilder() : Result.newBuilder();
    return b.setCallId(r.getCallId())
        .setStatus(r.getStatus())
        .setAttempts(r.getAttempts())
        .setFunctionId(r.getFunctionId())
        .setVersion(r.getVersion())
        .build();
  }

  /**
   * Cancels a call: a pending one never runs; a running one's result is dropped and, with {@code
   * terminate}, its container stopped. False if it had already finished.
   */
  public synchronized boolean cancel(String callId, boolean terminate) throws IOException {
    Call call = live.get(callId);
    if (call == null) {
      if (state.call(callId).isEmpty() && !finishing.containsKey(callId)) {
        throw noCall(callId);
      }
      return false;
    }
    Queue q = queues.get(key(call.fn));
    if (q != null) {
      q.pending.remove(callId);
    }
    Ctr c = call.container;
    finish(
        call,
        Result.newBuilder()
            .setStatus(Status.CANCELLED)
            .setFailure(
                Failure.newBuilder().setType("Cancelled").setMessage("the call was cancelled"))
            .build());
    if (c != null && terminate) {
      stop(c);
    }
    pump();
    return true;
  }

  /**
   * Finishes a live call with {@code result}; callers hear of it once it is durable. Under the
   * lock.
   */
  private void finish(Call call, Result result) {
    String id = call.record.getCallId();
    CallRecord done =
        ControlState.finish(
            call.record,
            result.toBuilder()
                .setCallId(id)
                .setFunctionId(call.record.getFunctionId())
                .setVersion(call.record.getVersion())
                .setAttempts(call.record.getAttempts())
                .build(),
            now());
    finishing.put(id, done);
    live.remove(id);
    if (call.container != null) {
      call.container.running.remove(id);
      call.container = null;
    }
    writer.write(
        done,
        () -> {
          finishing.remove(id);
          CompletableFuture<Result> f = waiters.remove(id);
          if (f != null) {
            f.complete(resultOf(done));
          }
        });
  }

  // ---- logs -------------------------------------------------------------------------------------

  /**
   * Follows a function's ({@code callId} empty) or a call's log lines; see {@link LogHub#follow}.
   */
  LogHub.Subscription followLogs(
      String functionId, String callId, java.util.function.Consumer<LogLine> to)
      throws IOException {
    return logs.follow(functionOf(functionId, callId), callId, to);
  }

  List<LogLine> logs(String functionId, String callId) throws IOException {
    return logs.backlog(functionOf(functionId, callId), callId);
  }

  /** The function named, or the call's. */
  private String functionOf(String functionId, String callId) throws IOException {
    return callId.isEmpty() ? functionId : peek(callId).getFunctionId();
  }

  /** Keeps log lines in {@code dir} (they outlive the scheduler) rather than in memory. */
  void logStore(LogStore store) {
    logs.store(store);
  }

  // ---- placement --------------------------------------------------------------------------------

  private static int maxContainers(Function f) {
    int max = f.getSpec().getAutoscaling().getMaxContainers();
    return max <= 0 ? DEFAULT_MAX_CONTAINERS : max;
  }

  private List<Ctr> containersOf(Function f) {
    String k = key(f);
    List<Ctr> out = new ArrayList<>();
    for (Ctr c : containers.values()) {
      if (key(c.fn).equals(k)) {
        out.add(c);
      }
    }
    return out;
  }

  private int wanted(Queue q, List<Ctr> mine) {
    int running = 0;
    for (Ctr c : mine) {
      running += c.running.size();
    }
    int demand = q.pending.size() + running;
    int slots = Math.max(1, q.fn.getSpec().getConcurrency());
    int need = (demand + slots - 1) / slots;
    if (q.meanMicros > 0 && demand > 0) {
      // Once the handler's time is known, a container is wanted only if the backlog would take
      // longer to work off than a container takes to start: more would not finish sooner.
      double seconds = demand * (q.meanMicros + CALL_OVERHEAD_MICROS) / 1e6 / slots;
      need = Math.min(need, Math.max(1, (int) Math.ceil(seconds / (q.startMillis / 1000.0))));
      if (q.pipeline() > 0) {
        // Short calls keep a runner busy on one core: containers beyond the cores of the workers
        // only take turns on them (measured: a Java map on 2 cores, 4.6k/s on 1 container, 2.9k/s
        // on 7).
        double cores = 0;
        for (WorkerConn w : workers.values()) {
          cores += w.cpus;
        }
        if (cores > 0) {
          need = Math.min(need, Math.max(1, (int) Math.floor(cores)));
        }
      }
    }
    if (q.fn.getSpec().getStopped()) {
      return 0;
    }
    int wanted = need;
    if (isLatest(q.fn)) {
      var a = q.fn.getSpec().getAutoscaling();
      wanted = Math.max(a.getMinContainers(), need + (demand > 0 ? a.getBufferContainers() : 0));
    }
    return Math.min(wanted, maxContainers(q.fn));
  }

  /**
   * Assigns queued inputs to free containers and starts containers where the backlog needs them.
   */
  private void pump() {
    if (closed) {
      return;
    }
    for (Queue q : queues.values()) {
      List<Ctr> mine = containersOf(q.fn);
      int wanted = wanted(q, mine);
      int extra = q.pipeline();
      List<Ctr> serving = mine;
      if (extra > 0) {
        // Short calls run best on few containers: beyond what is wanted, the youngest get no new
        // calls, go idle and stop. (Long calls go wherever a slot is free.)
        serving = new ArrayList<>();
        for (Ctr c : mine) {
          if (c.state == CState.READY) {
            serving.add(c);
          }
        }
        serving.sort(Comparator.comparingLong((Ctr c) -> c.startedAt));
        if (serving.size() > Math.max(1, wanted)) {
          serving = serving.subList(0, Math.max(1, wanted));
        }
      }
      while (!q.pending.isEmpty()) {
        Ctr best = null;
        for (Ctr c : serving) {
          if (c.free(extra) && (best == null || c.running.size() < best.running.size())) {
            best = c;
          }
        }
        if (best == null) {
          break;
        }
        assign(best, q.pending.poll());
      }
      long live = mine.stream().filter(c -> c.state != CState.STOPPING).count();
      if (live >= wanted) {
        q.waiting = "";
      }
      while (live < wanted) {
        Optional<String> why = startContainer(q);
        q.waiting = why.orElse("");
        if (why.isPresent()) {
          break;
        }
        live++;
      }
    }
    flushRuns();
  }

  /** GPU requests in rank order; one empty rank when the function wants none. */
  private static List<Optional<GpuRequest>> ranks(Function f) {
    List<String> gpu = f.getSpec().getResources().getGpuList();
    if (gpu.isEmpty()) {
      return List.of(Optional.empty());
    }
    return gpu.stream().map(g -> Optional.of(GpuRequest.parse(g))).toList();
  }

  /**
   * The worker's GPUs (positions) a request takes, out of {@code free}; empty if they are not
   * there.
   */
  private static List<Integer> pickGpus(WorkerConn w, GpuRequest req, Set<Integer> used) {
    Map<String, List<Integer>> free = new TreeMap<>();
    for (int i = 0; i < w.gpus.size(); i++) {
      if (!used.contains(i)) {
        free.computeIfAbsent(w.gpus.get(i), k -> new ArrayList<>()).add(i);
      }
    }
    for (var e : free.entrySet()) {
      if ((req.type().equals(GpuRequest.ANY) || req.type().equals(e.getKey()))
          && e.getValue().size() >= req.count()) {
        return List.copyOf(e.getValue().subList(0, req.count()));
      }
    }
    return List.of();
  }

  /**
   * Whether {@code w} could run {@code f} at all (empty), or why not; {@code used} what it holds.
   */
  private static Optional<String> fits(
      WorkerConn w, Function f, Optional<GpuRequest> gpu, boolean now) {
    var r = f.getSpec().getResources();
    double cpusFree = w.cpus - (now ? w.usedCpus() : 0);
    if (w.cpus > 0 && r.getCpus() > cpusFree + 1e-9) {
      return Optional.of(String.format(Locale.ROOT, "%.2f CPUs", r.getCpus()));
    }
    long memFree = w.memory - (now ? w.usedMemory() : 0);
    if (w.memory > 0 && r.getMemoryBytes() > memFree) {
      return Optional.of(r.getMemoryBytes() + " bytes of memory");
    }
    if (gpu.isPresent() && pickGpus(w, gpu.get(), now ? w.usedGpus() : Set.of()).isEmpty()) {
      return Optional.of("GPU " + gpu.get());
    }
    String image = f.getSpec().getImage();
    if (image.startsWith(BUILT_IMAGE) && !w.images.contains(image)) {
      // built by one worker into its own store: the others do not have it
      return Optional.of("image " + image + " (built on another worker's store)");
    }
    return Optional.empty();
  }

  /** The names of images {@link #build} makes, which only the worker that built one has. */
  static final String BUILT_IMAGE = "skiff-image:";

  /** Why no attached worker could ever run {@code f}, or empty if one could. */
  private Optional<String> neverFits(Function f) {
    if (workers.isEmpty()) {
      return Optional.of("waiting for capacity: no worker is attached");
    }
    String why = "";
    for (Optional<GpuRequest> rank : ranks(f)) {
      for (WorkerConn w : workers.values()) {
        Optional<String> no = fits(w, f, rank, false);
        if (no.isEmpty()) {
          return Optional.empty();
        }
        why = no.get();
      }
    }
    return Optional.of(
        "waiting for capacity: no worker attached has "
            + why
            + (f.getSpec().getResources().getGpuCount() > 0
                ? " (their GPUs: " + inventory() + ")"
                : ""));
  }

  private String inventory() {
    Map<String, Integer> count = new TreeMap<>();
    workers.values().forEach(w -> w.gpus.forEach(g -> count.merge(g, 1, Integer::sum)));
    if (count.isEmpty()) {
      return "none";
    }
    List<String> out = new ArrayList<>();
    count.forEach((t, n) -> out.add(t + "x" + n));
    return String.join(", ", out);
  }

  /** Starts a container of the queue's function where it fits; empty, or why it cannot now. */
  private Optional<String> startContainer(Queue q) {
    Function f = q.fn;
    Optional<String> never = neverFits(f);
    if (never.isPresent()) {
      return never;
    }
    String image = f.getSpec().getImage();
    for (Optional<GpuRequest> rank : ranks(f)) {
      WorkerConn best = null;
      for (WorkerConn w : workers.values()) {
        if (fits(w, f, rank, true).isPresent()) {
          continue;
        }
        if (best == null || better(w, best, image)) {
          best = w;
        }
      }
      if (best != null) {
        WorkerConn chosen = best;
        List<Integer> gpus =
            rank.map(g -> pickGpus(chosen, g, chosen.usedGpus())).orElse(List.of());
        Ctr c = new Ctr(newContainerId(), best, f, gpus, now());
        best.containers.put(c.id, c);
        containers.put(c.id, c);
        containerFunctions.put(c.id, f.getId());
        Map<String, String> secretEnv;
        try {
          secretEnv = secretEnv(f);
        } catch (IOException e) {
          return Optional.of("cannot read the function's secrets: " + e.getMessage());
        }
        best.send(
            Assignment.newBuilder()
                .setStart(
                    StartContainer.newBuilder()
                        .setContainerId(c.id)
                        .setFunction(f)
                        .putAllSecretEnv(secretEnv)
                        .addAllGpuIndexes(gpus))
                .build());
        return Optional.empty();
      }
    }
    return Optional.of("waiting for capacity: every worker that could run it is full");
  }

  /** Whether {@code a} is a better place than {@code b}: has the image, then the least loaded. */
  private static boolean better(WorkerConn a, WorkerConn b, String image) {
    boolean ai = a.images.contains(image);
    boolean bi = b.images.contains(image);
    if (ai != bi) {
      return ai;
    }
    return load(a) < load(b);
  }

  private static double load(WorkerConn w) {
    double busy = w.containers.values().stream().mapToInt(c -> c.running.size() + 1).sum();
    return busy / Math.max(1.0, w.cpus);
  }

  private Map<String, String> secretEnv(Function f) throws IOException {
    Map<String, String> env = new TreeMap<>();
    for (String name : f.getSpec().getSecretsList()) {
      env.putAll(state.secret(name).orElse(Map.of()));
    }
    return env;
  }

  private static String newContainerId() {
    byte[] b = new byte[6];
    RANDOM.nextBytes(b);
    return "ct-" + HexFormat.of().formatHex(b);
  }

  private void assign(Ctr c, String callId) {
    Call call = live.get(callId);
    if (call == null) {
      return; // cancelled meanwhile
    }
    call.record =
        call.record.toBuilder()
            .setStatus(Status.RUNNING)
            .setAttempts(call.record.getAttempts() + 1)
            .setUpdatedMs(now())
            .build();
    call.container = c;
    c.running.add(callId);
    c.calls++;
    long timeout = c.fn.getSpec().getTimeoutMs();
    c.worker.outbox.add(
        RunInput.newBuilder()
            .setContainerId(c.id)
            .setCallId(callId)
            .setInput(call.record.getInput())
            .setTimeoutMs(timeout > 0 ? timeout : DEFAULT_TIMEOUT.toMillis())
            .setAttempt(call.record.getAttempts())
            .build());
  }

  /** Sends each worker the calls assigned to it since the last time, in one message. */
  private void flushRuns() {
    for (WorkerConn w : workers.values()) {
      RunBatch.Builder batch = RunBatch.newBuilder();
      long bytes = 0;
      for (RunInput run : w.outbox) {
        if (batch.getRunCount() > 0 && bytes + run.getSerializedSize() > Payloads.BATCH_BYTES) {
          w.send(Assignment.newBuilder().setRunBatch(batch).build());
          batch = RunBatch.newBuilder();
          bytes = 0;
        }
        batch.addRun(run);
        bytes += run.getSerializedSize();
      }
      if (batch.getRunCount() > 0) {
        w.send(Assignment.newBuilder().setRunBatch(batch).build());
      }
      w.outbox.clear();
    }
  }

  private void stop(Ctr c) {
    if (c.state == CState.STOPPING) {
      return;
    }
    c.state = CState.STOPPING;
    c.worker.send(
        Assignment.newBuilder().setStop(StopContainer.newBuilder().setContainerId(c.id)).build());
  }

  /** An attempt ended with {@code result} (from a worker): finish the call, or try it again. */
  private void attemptEnded(Call call, Result result) {
    switch (result.getStatus()) {
      case SUCCESS -> finish(call, result);
      case HANDLER_ERROR, TIMEOUT, OUT_OF_MEMORY -> {
        RetryPolicy p = call.fn.getSpec().getRetries();
        if (call.record.getAttempts() <= p.getMaxRetries()) {
          retryLater(call, retryDelay(p, call.record.getAttempts()), false);
        } else {
          finish(call, result);
        }
      }
      default -> lost(call, result.getFailure().getMessage());
    }
  }

  static long retryDelay(RetryPolicy p, int attempt) {
    long initial = p.getInitialDelayMs() > 0 ? p.getInitialDelayMs() : 1000;
    double backoff = p.getBackoff() >= 1 ? p.getBackoff() : 2.0;
    long max = p.getMaxDelayMs() > 0 ? p.getMaxDelayMs() : 60_000;
    return (long) Math.min(max, initial * Math.pow(backoff, Math.max(0, attempt - 1)));
  }

  /** Queues a call again after {@code delayMs}; {@code first}: ahead of the rest. */
  private void retryLater(Call call, long delayMs, boolean first) {
    call.record = call.record.toBuilder().setStatus(Status.PENDING).setUpdatedMs(now()).build();
    if (call.container != null) {
      call.container.running.remove(call.record.getCallId());
      call.container = null;
    }
    writer.write(call.record, null);
    String id = call.record.getCallId();
    Runnable requeue =
        () -> {
          synchronized (this) {
            if (live.get(id) == call) {
              queue(call.fn).pending.add(id);
              pump();
            }
          }
        };
    if (delayMs <= 0 && first) {
      queue(call.fn).pending.addFirst(id);
    } else if (delayMs <= 0) {
      queue(call.fn).pending.add(id);
    } else {
      timers.schedule(requeue, delayMs, TimeUnit.MILLISECONDS);
    }
  }

  /** An attempt lost to the platform: tried again without counting, up to a bound. */
  private void lost(Call call, String why) {
    call.record =
        call.record.toBuilder()
            .setAttempts(Math.max(0, call.record.getAttempts() - 1))
            .setPlatformAttempts(call.record.getPlatformAttempts() + 1)
            .build();
    if (call.record.getPlatformAttempts() >= PLATFORM_ATTEMPTS) {
      finish(
          call,
          Result.newBuilder()
              .setStatus(Status.INTERNAL)
              .setFailure(
                  Failure.newBuilder()
                      .setType("PlatformFailure")
                      .setMessage(
                          "the call was lost "
                              + PLATFORM_ATTEMPTS
                              + " times; the last time: "
                              + why))
              .build());
      return;
    }
    retryLater(call, 0, true); // ahead of the rest: it has waited longest
  }

  /**
   * Every second: stop containers idle past their window beyond what is wanted, and at once those
   * beyond it that never ran a call (started for a backlog that others worked off: an idle sandbox
   * still costs the host CPU); place again.
   */
  private void autoscale() {
    try {
      synchronized (this) {
        if (closed) {
          return;
        }
        long t = now();
        for (Queue q : queues.values()) {
          List<Ctr> mine = containersOf(q.fn);
          long live = mine.stream().filter(c -> c.state != CState.STOPPING).count();
          int wanted = wanted(q, mine);
          long window = q.fn.getSpec().getAutoscaling().getScaledownWindowMs();
          window = window > 0 ? window : DEFAULT_SCALEDOWN.toMillis();
          for (Ctr c : mine) {
            if (live <= wanted) {
              break;
            }
            boolean idle = c.state == CState.READY && c.running.isEmpty();
            if (idle && (c.calls == 0 || !isLatest(c.fn) || t - c.idleSince >= window)) {
              stop(c);
              live--;
            }
          }
        }
        queues
            .values()
            .removeIf(q -> !isLatest(q.fn) && q.pending.isEmpty() && containersOf(q.fn).isEmpty());
        pump();
      }
    } catch (RuntimeException e) {
      LOG.error("autoscaler: {}", e.toString(), e);
    }
  }

  // ---- image builds -----------------------------------------------------------------------------

  private record Build(String workerId, StreamObserver<BuildEvent> out) {}

  private final Map<String, Build> builds = new HashMap<>();

  /**
   * Builds an image on the least busy worker, relaying its log to {@code out} and, last, the
   * image's name ({@code skiff-image:...}, the same for the same Dockerfile and context), which
   * that worker then has (placement prefers it). The step cache of the worker's store makes a
   * rebuild of what it built before cost no step.
   */
  public void build(BuildImageRequest req, StreamObserver<BuildEvent> out) throws IOException {
    if (req.getDockerfile().isBlank()) {
      throw new IllegalArgumentException("the Dockerfile is empty: it needs at least a FROM");
    }
    if (req.getDockerfile().length() > 1 << 20) {
      throw new IllegalArgumentException("a Dockerfile over 1 MiB is refused");
    }
    if (!req.getContextDigest().isEmpty() && !state.hasBlob(req.getContextDigest())) {
      throw new IllegalArgumentException(
          "no build context " + req.getContextDigest() + " (upload it with PutCode first)");
    }
    String tag =
        BUILT_IMAGE
            + CodeBundle.digest(
                    (req.getDockerfile() + "\n" + req.getContextDigest())
                        .getBytes(StandardCharsets.UTF_8))
                .substring("sha256:".length(), "sha256:".length() + 20);
    synchronized (this) {
      WorkerConn w =
          workers.values().stream()
              .min(java.util.Comparator.comparingInt(x -> x.containers.size()))
              .orElseThrow(
                  () ->
                      io.grpc.Status.FAILED_PRECONDITION
                          .withDescription("no worker is attached to build the image on")
                          .asRuntimeException());
      String id = "build-" + UUID.randomUUID();
      builds.put(id, new Build(w.id, out));
      w.send(
          Assignment.newBuilder()
              .setBuild(
                  dev.skiff.scheduler.proto.BuildImage.newBuilder()
                      .setBuildId(id)
                      .setDockerfile(req.getDockerfile())
                      .setContextDigest(req.getContextDigest())
                      .setForce(req.getForce())
                      .setTag(tag))
              .build());
    }
  }

  /** A build's progress from the worker running it, relayed to its client. */
  private void buildProgress(WorkerConn w, BuildProgress p) {
    Build b = builds.get(p.getBuildId());
    if (b == null || !b.workerId().equals(w.id)) {
      return;
    }
    boolean done = !p.getImage().isEmpty() || !p.getError().isEmpty();
    if (done) {
      builds.remove(p.getBuildId());
    }
    if (!p.getImage().isEmpty()) {
      w.images.add(p.getImage());
    }
    try {
      if (!p.getLog().isEmpty()) {
        b.out().onNext(BuildEvent.newBuilder().setLog(p.getLog()).build());
      }
      if (!p.getImage().isEmpty()) {
        b.out().onNext(BuildEvent.newBuilder().setImage(p.getImage()).build());
        b.out().onCompleted();
      } else if (!p.getError().isEmpty()) {
        b.out()
            .onError(
                io.grpc.Status.FAILED_PRECONDITION
                    .withDescription(p.getError())
                    .asRuntimeException());
      }
    } catch (RuntimeException e) { // the client went away: the build goes on, its cache with it
      LOG.debug("the client of build {} went away: {}", p.getBuildId(), e.toString());
    }
  }

  // ---- workers ----------------------------------------------------------------------------------

  /** A worker's stream: its messages in, assignments out. */
  StreamObserver<WorkerMessage> attach(StreamObserver<Assignment> out) {
    return new StreamObserver<>() {
      private String workerId;

      @Override
      public void onNext(WorkerMessage m) {
        if (m.hasLog()) {
          LogLine l = m.getLog();
          logs.add(
              l.toBuilder()
                  .setFunctionId(containerFunctions.getOrDefault(l.getContainerId(), ""))
                  .build());
          return;
        }
        synchronized (Scheduler.this) {
          try {
            handle(m);
          } catch (RuntimeException e) {
            LOG.error("handling {} from worker {}: {}", m.getKindCase(), workerId, e.toString(), e);
          }
        }
      }

      private void handle(WorkerMessage m) {
        if (m.hasHello()) {
          var h = m.getHello();
          workerId = h.getWorkerId();
          WorkerConn old = workers.remove(workerId);
          if (old != null) {
            gone(old, "it attached again");
          }
          WorkerConn w =
              new WorkerConn(
                  workerId,
                  h.getCpus(),
                  h.getMemoryBytes(),
                  List.copyOf(h.getGpusList()),
                  new HashSet<>(h.getImagesList()),
                  out);
          w.lastSeen = now();
          w.gpusWithoutGvisor = h.getGpusWithoutGvisor();
          workers.put(workerId, w);
          w.send(
              Assignment.newBuilder()
                  .setWelcome(dev.skiff.scheduler.proto.Welcome.getDefaultInstance())
                  .build());
          LOG.info(
              "worker {} attached: {} CPUs, {} bytes, GPUs {}",
              workerId,
              h.getCpus(),
              h.getMemoryBytes(),
              h.getGpusList());
          pump();
          return;
        }
        WorkerConn w = workerId == null ? null : workers.get(workerId);
        if (w == null || w.out != out) {
          return;
        }
        w.lastSeen = now();
        switch (m.getKindCase()) {
          case STARTED -> {
            Ctr c = w.containers.get(m.getStarted().getContainerId());
            if (c != null && c.state == CState.STARTING) {
              c.state = CState.READY;
              c.idleSince = now();
              w.images.add(c.fn.getSpec().getImage());
              Queue q = queues.get(key(c.fn));
              if (q != null) {
                q.startFailures = 0;
                q.started(now() - c.startedAt);
              }
            }
          }
          case FAILED -> {
            Ctr c = remove(w, m.getFailed().getContainerId());
            if (c != null) {
              startFailed(c, m.getFailed().getFailure());
            }
          }
          case EXITED -> containerEnded(w, m.getExited().getContainerId(), m.getExited().getWhy());
          case DONE -> done(w, m.getDone());
          case DONE_BATCH -> m.getDoneBatch().getDoneList().forEach(d -> done(w, d));
          case BUILD -> {
            buildProgress(w, m.getBuild());
            return; // nothing to place
          }
          case GPU_SAMPLES -> {
            m.getGpuSamples().getSampleList().forEach(g -> w.gpuSamples.put(g.getIndex(), g));
            return; // nothing to place
          }
          default -> {}
        }
        pump();
      }

      @Override
      public void onError(Throwable t) {
        ended();
      }

      @Override
      public void onCompleted() {
        ended();
      }

      private void ended() {
        synchronized (Scheduler.this) {
          WorkerConn w = workerId == null ? null : workers.get(workerId);
          if (w != null && w.out == out) {
            workers.remove(workerId);
            gone(w, "its stream ended");
            pump();
          }
        }
        try {
          out.onCompleted();
        } catch (RuntimeException ignored) {
          // already closed
        }
      }
    };
  }

  /** A call's attempt ended on worker {@code w}. */
  private void done(WorkerConn w, InputDone d) {
    Ctr c = w.containers.get(d.getContainerId());
    Result result = d.getResult();
    String id = result.getCallId();
    Call call = live.get(id);
    if (c != null && call != null && call.container == c && c.running.remove(id)) {
      call.container = null;
      boolean first = c.finished++ == 0;
      if (result.getDurationUs() > 0) {
        Queue q = queues.get(key(c.fn));
        if (q != null) {
          q.ran(result.getDurationUs(), first);
        }
      }
      if (c.running.isEmpty()) {
        c.idleSince = now();
      }
      attemptEnded(call, result);
    } // else cancelled, or an attempt that is no longer the call's
    if (!d.getContainerEnded().isEmpty()) {
      containerEnded(w, d.getContainerId(), d.getContainerEnded());
    }
  }

  /** A container died (or was stopped): it is forgotten, and the calls it ran go elsewhere. */
  private void containerEnded(WorkerConn w, String containerId, String why) {
    Ctr c = remove(w, containerId);
    if (c == null) {
      return;
    }
    for (String id : List.copyOf(c.running)) {
      Call call = live.get(id);
      if (call != null) {
        lost(call, "its container ended: " + why);
      }
    }
  }

  private Ctr remove(WorkerConn w, String containerId) {
    Ctr c = w.containers.remove(containerId);
    containers.remove(containerId);
    containerFunctions.remove(containerId);
    return c;
  }

  /** A worker went away: its containers are gone, their calls are tried again elsewhere. */
  private void gone(WorkerConn w, String why) {
    LOG.warn("worker {} is gone ({}): {} containers lost", w.id, why, w.containers.size());
    for (var it = builds.entrySet().iterator(); it.hasNext(); ) {
      var b = it.next();
      if (b.getValue().workerId().equals(w.id)) {
        it.remove();
        try {
          b.getValue()
              .out()
              .onError(
                  io.grpc.Status.UNAVAILABLE
                      .withDescription(
                          "worker "
                              + w.id
                              + ", which was building the image, is gone ("
                              + why
                              + ")")
                      .asRuntimeException());
        } catch (RuntimeException e) {
          LOG.debug("the client of build {} went away: {}", b.getKey(), e.toString());
        }
      }
    }
    for (Ctr c : List.copyOf(w.containers.values())) {
      remove(w, c.id);
      for (String id : List.copyOf(c.running)) {
        Call call = live.get(id);
        if (call != null) {
          lost(call, "worker " + w.id + " went away");
        }
      }
    }
  }

  /**
   * A container could not start. If it never will (the handler does not import, the image does not
   * exist) or it failed {@link #START_FAILURES} times in a row, the calls queued for that version
   * fail with the reason instead of starting container after container.
   */
  private void startFailed(Ctr c, Failure failure) {
    Queue q = queues.get(key(c.fn));
    if (q == null) {
      return;
    }
    q.startFailures++;
    boolean permanent =
        failure.getType().equals(IMPORT_FAILED) || failure.getType().equals(NO_SUCH_IMAGE);
    LOG.warn(
        "a container of {} could not start: {}: {}",
        key(c.fn),
        failure.getType(),
        failure.getMessage());
    if (!permanent && q.startFailures < START_FAILURES) {
      return;
    }
    Status status =
        failure.getType().equals(IMPORT_FAILED) ? Status.HANDLER_ERROR : Status.INTERNAL;
    while (!q.pending.isEmpty()) {
      Call call = live.get(q.pending.poll());
      if (call != null) {
        finish(call, Result.newBuilder().setStatus(status).setFailure(failure).build());
      }
    }
    q.startFailures = 0;
  }

  // ---- what is where ----------------------------------------------------------------------------

  public synchronized List<WorkerInfo> workers() {
    return workers.values().stream()
        .map(
            w ->
                WorkerInfo.newBuilder()
                    .setId(w.id)
                    .setCpus(w.cpus)
                    .setMemoryBytes(w.memory)
                    .addAllGpus(w.gpus)
                    .setContainers(w.containers.size())
                    .setLastSeenMs(w.lastSeen)
                    .addAllImages(new java.util.TreeSet<>(w.images))
                    .setCpusUsed(w.usedCpus())
                    .setMemoryUsed(w.usedMemory())
                    .addAllGpusUsed(new java.util.TreeSet<>(w.usedGpus()))
                    .setGpusWithoutGvisor(w.gpusWithoutGvisor)
                    .build())
        .toList();
  }

  public synchronized List<ContainerInfo> containers() {
    return containers.values().stream()
        .map(
            c ->
                ContainerInfo.newBuilder()
                    .setId(c.id)
                    .setWorkerId(c.worker.id)
                    .setFunctionId(c.fn.getId())
                    .setVersion(c.fn.getVersion())
                    .setState(
                        switch (c.state) {
                          case STARTING -> "starting";
                          case STOPPING -> "stopping";
                          case READY -> c.running.isEmpty() ? "idle" : "busy";
                        })
                    .setCalls(c.calls)
                    .setRunning(c.running.size())
                    .addAllGpus(c.gpus.stream().map(i -> c.worker.gpus.get(i)).toList())
                    .addAllGpuSamples(
                        c.gpus.stream()
                            .map(c.worker.gpuSamples::get)
                            .filter(java.util.Objects::nonNull)
                            .toList())
                    .setStartedMs(c.startedAt)
                    .build())
        .toList();
  }

  public synchronized List<FunctionInfo> functions() {
    List<FunctionInfo> out = new ArrayList<>();
    List<Function> all = new ArrayList<>(latest.values());
    all.sort(Comparator.comparing(Function::getId));
    for (Function f : all) {
      int ctrs = 0;
      int running = 0;
      for (Ctr c : containers.values()) {
        if (c.fn.getId().equals(f.getId())) {
          ctrs++;
          running += c.running.size();
        }
      }
      int pending = 0;
      String waiting = "";
      for (Queue q : queues.values()) {
        if (q.fn.getId().equals(f.getId())) {
          pending += q.pending.size();
          if (!q.pending.isEmpty() && waiting.isEmpty()) {
            waiting = q.waiting;
          }
        }
      }
      out.add(
          FunctionInfo.newBuilder()
              .setFunction(f)
              .setContainers(ctrs)
              .setPending(pending)
              .setRunning(running)
              .setWaiting(waiting)
              .build());
    }
    return out;
  }

  public List<CallInfo> calls(int limit, String functionId) throws IOException {
    List<CallInfo> out = new ArrayList<>();
    for (CallRecord stored : state.recent(functionId.isEmpty() ? limit : limit * 20)) {
      if (!functionId.isEmpty() && !stored.getFunctionId().equals(functionId)) {
        continue;
      }
      if (out.size() >= limit) {
        break;
      }
      CallInfo.Builder b = CallInfo.newBuilder();
      synchronized (this) {
        Call call = live.get(stored.getCallId());
        CallRecord r =
            call != null ? call.record : finishing.getOrDefault(stored.getCallId(), stored);
        b.setCallId(r.getCallId())
            .setFunctionId(r.getFunctionId())
            .setVersion(r.getVersion())
            .setStatus(r.getStatus())
            .setAttempts(r.getAttempts())
            .setPlatformAttempts(r.getPlatformAttempts())
            .setCreatedMs(r.getCreatedMs());
        if (call != null && call.container != null) {
          b.setWorkerId(call.container.worker.id);
        }
        if (call != null && r.getStatus() == Status.PENDING) {
          Queue q = queues.get(key(call.fn));
          b.setWaiting(q == null ? "" : q.waiting);
        }
      }
      out.add(b.build());
    }
    return out;
  }

  /** Stops placing work, lets the workers go, and writes what is queued to the state. */
  @Override
  public void close() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      autoscaler.cancel(false);
      forgetter.cancel(false);
      logFlusher.cancel(false);
      logs.flush();
      for (WorkerConn w : workers.values()) {
        try {
          w.out.onCompleted();
        } catch (RuntimeException ignored) {
          // the worker went away first
        }
      }
      workers.clear();
    }
    writer.close();
  }
}
