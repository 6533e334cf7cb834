package dev.skiff.sdk;

import dev.skiff.api.GpuRequest;
import dev.skiff.api.Resources;
import dev.skiff.scheduler.proto.Autoscaling;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.RetryPolicy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Defines a Java function of an {@link App}: its image (required), resources, scaling and calls'
 * policy; {@link #build} adds it to the app. Every setter checks its value and says what it wants.
 *
 * @param <I> the input type
 * @param <O> the result type
 */
public final class FunctionBuilder<I, O> {
  private final App app;
  private final MethodRef ref;
  private String name;
  private Image image;
  private double cpu;
  private long memory;
  private final List<String> gpu = new ArrayList<>();
  private Duration timeout = Duration.ZERO;
  private Retries retries = Retries.none();
  private int concurrency = 1;
  private int minContainers;
  private int maxContainers;
  private int bufferContainers;
  private Duration scaledownWindow = Duration.ZERO;
  private boolean memorySnapshot;
  private final List<String> secrets = new ArrayList<>();
  private final Map<String, String> env = new LinkedHashMap<>();

  FunctionBuilder(App app, MethodRef ref) {
    this.app = app;
    this.ref = ref;
    this.name = ref.defaultName();
  }

  MethodRef ref() {
    return ref;
  }

  /** The function's name in its app (default: class and method, {@code square-apply}). */
  public FunctionBuilder<I, O> name(String name) {
    this.name = App.checkName(name, "function");
    return this;
  }

  /** The image its containers run on, with the JVM in it. */
  public FunctionBuilder<I, O> image(Image image) {
    this.image = Objects.requireNonNull(image, "image");
    return this;
  }

  /** CPU cores per container (fractions allowed; 0, the default: no limit). */
  public FunctionBuilder<I, O> cpu(double cores) {
    this.cpu = new Resources(cores, 0).cpus();
    return this;
  }

  /** Memory per container, as {@code 512M}, {@code 1G}, {@code 2Gi} (default: no limit). */
  public FunctionBuilder<I, O> memory(String size) {
    this.memory = Resources.parseBytes(size);
    return this;
  }

  /**
   * GPUs per container, in order of preference: {@code "H100"}, {@code "A100-80GB:2"}, {@code
   * "any"}; a container gets the first that a host has free.
   */
  public FunctionBuilder<I, O> gpu(String... ranked) {
    for (String g : ranked) {
      GpuRequest.parse(g);
    }
    gpu.clear();
    gpu.addAll(List.of(ranked));
    return this;
  }

  /** How long one attempt may run (default: 300 s). */
  public FunctionBuilder<I, O> timeout(Duration timeout) {
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("a timeout must be positive, not " + timeout);
    }
    this.timeout = timeout;
    return this;
  }

  /** Retries of the handler's errors and timeouts (default: none). */
  public FunctionBuilder<I, O> retries(Retries retries) {
    this.retries = Objects.requireNonNull(retries, "retries");
    return this;
  }

  /** Calls one container runs at once, each on a thread of its own (default: 1). */
  public FunctionBuilder<I, O> concurrency(int calls) {
    if (calls < 1 || calls > 1000) {
      throw new IllegalArgumentException("concurrency must be 1 to 1000, not " + calls);
    }
    this.concurrency = calls;
    return this;
  }

  /** Containers kept running even with no calls (default: 0, scale to zero). */
  public FunctionBuilder<I, O> minContainers(int n) {
    this.minContainers = count(n, "min");
    return this;
  }

  /** At most this many containers (default: 20). */
  public FunctionBuilder<I, O> maxContainers(int n) {
    if (n < 1) {
      throw new IllegalArgumentException("max containers must be at least 1, not " + n);
    }
    this.maxContainers = n;
    return this;
  }

  /** Idle containers kept beyond the backlog while calls come (default: 0). */
  public FunctionBuilder<I, O> bufferContainers(int n) {
    this.bufferContainers = count(n, "buffer");
    return this;
  }

  /** How long an idle container lives before it stops (default: 60 s). */
  public FunctionBuilder<I, O> scaledownWindow(Duration window) {
    if (window.isNegative() || window.isZero()) {
      throw new IllegalArgumentException("a scale-down window must be positive, not " + window);
    }
    this.scaledownWindow = window;
    return this;
  }

  /**
   * Takes a memory snapshot of the first container once its {@link Enter} methods have run, and
   * starts later containers from it: a warmed JVM in place of a JVM start (default: off).
   */
  public FunctionBuilder<I, O> memorySnapshot(boolean on) {
    this.memorySnapshot = on;
    return this;
  }

  /** Secrets (made with {@code skiff secret create}) whose values become environment variables. */
  public FunctionBuilder<I, O> secret(String... names) {
    for (String n : names) {
      secrets.add(App.checkName(n, "secret"));
    }
    return this;
  }

  /** An environment variable in the function's containers. */
  public FunctionBuilder<I, O> env(String key, String value) {
    if (!key.matches("[A-Za-z_][A-Za-z0-9_]*")) {
      throw new IllegalArgumentException("bad environment variable name '" + key + "'");
    }
    env.put(key, Objects.requireNonNull(value, "value"));
    return this;
  }

  /** Adds the function to its app and returns it; calls need the app running or deployed. */
  public SkiffFunction<I, O> build() {
    if (image == null) {
      throw new IllegalStateException(
          "function " + name + " has no image: set one with .image(Image.of(\"name:tag\"))");
    }
    if (maxContainers > 0 && minContainers > maxContainers) {
      throw new IllegalStateException(
          "function "
              + name
              + " wants at least "
              + minContainers
              + " containers but at most "
              + maxContainers);
    }
    SkiffFunction<I, O> f =
        new SkiffFunction<>(
            app::client, app.name() + "/" + name, Codec.type(ref.resultType()), this);
    app.add(f);
    return f;
  }

  Image image() {
    return image;
  }

  /** The function's spec for the control plane, with its class path, on image {@code imageName}. */
  FunctionSpec spec(List<String> classpath, String imageName) {
    return FunctionSpec.newBuilder()
        .setApp(app.name())
        .setName(name)
        .setImage(imageName)
        .setInterpreter(image.jvm())
        .setLanguage("java")
        .setHandler(ref.handler())
        .addAllClasspath(classpath)
        .setResources(
            dev.skiff.scheduler.proto.Resources.newBuilder()
                .setCpus(cpu)
                .setMemoryBytes(memory)
                .addAllGpu(gpu))
        .setTimeoutMs(timeout.toMillis())
        .setRetries(
            RetryPolicy.newBuilder()
                .setMaxRetries(retries.maxRetries())
                .setBackoff(retries.backoff())
                .setInitialDelayMs(retries.initialDelay().toMillis())
                .setMaxDelayMs(retries.maxDelay().toMillis()))
        .setConcurrency(concurrency)
        .setAutoscaling(
            Autoscaling.newBuilder()
                .setMinContainers(minContainers)
                .setMaxContainers(maxContainers)
                .setBufferContainers(bufferContainers)
                .setScaledownWindowMs(scaledownWindow.toMillis()))
        .setSnapshot(memorySnapshot)
        .addAllSecrets(secrets)
        .putAllEnv(env)
        .build();
  }

  private static int count(int n, String what) {
    if (n < 0) {
      throw new IllegalArgumentException(what + " containers must not be negative, not " + n);
    }
    return n;
  }
}
