package dev.skiff.sdk;

import dev.skiff.scheduler.proto.DeployRequest;
import dev.skiff.scheduler.proto.DeployResponse;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.regex.Pattern;

/**
 * A named group of functions, defined in this program and run on the platform. {@link #run} ships
 * this program's classes and jars (only what the scheduler lacks), deploys the functions for as
 * long as the returned {@link AppRun} is open, and streams their containers' output here; {@link
 * #deploy} deploys them to stay. No image is built: the classes are mounted into the containers.
 *
 * <pre>{@code
 * App app = App.named("demo");
 * SkiffFunction<Integer, Integer> square =
 *     app.function(Square::apply).image(Image.of("jvm:1")).build();
 * try (AppRun run = app.run()) {
 *   int r = square.remote(4);
 * }
 * }</pre>
 */
public final class App {
  private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9_-]{0,62}");
  private static final java.util.concurrent.Executor BACKGROUND =
      java.util.concurrent.Executors.newThreadPerTaskExecutor(
          Thread.ofPlatform().daemon().name("skiff-deploy-", 0).factory());

  private final String name;
  private final List<SkiffFunction<?, ?>> functions = new ArrayList<>();
  private SkiffClient client;
  private List<java.nio.file.Path> classPath;
  private Consumer<OutputLine> output = line -> System.err.println(line);

  private App(String name) {
    this.name = name;
  }

  /** An app; {@code name} is lower-case letters, digits, '-' and '_'. */
  public static App named(String name) {
    return new App(checkName(name, "app"));
  }

  static String checkName(String name, String what) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(
          "bad "
              + what
              + " name '"
              + name
              + "': want lower-case letters, digits, '-' and '_',"
              + " starting with a letter or digit, at most 63");
    }
    return name;
  }

  /**
   * This app talks to the scheduler through {@code client} (default: {@link
   * SkiffClient#connect()}).
   */
  public App client(SkiffClient client) {
    this.client = Objects.requireNonNull(client, "client");
    return this;
  }

  /**
   * Ships these class path entries (directories of classes, jars) instead of this JVM's whole class
   * path: the classes of the handlers and what they use.
   */
  public App classPath(java.nio.file.Path... entries) {
    this.classPath = List.of(entries);
    return this;
  }

  /**
   * Where the output of this app's containers goes during a {@link #run} (default: standard error,
   * as {@code [app/function call] line}); {@link #slf4jOutput} logs it instead.
   */
  public App output(Consumer<OutputLine> sink) {
    this.output = Objects.requireNonNull(sink, "sink");
    return this;
  }

  /** Output through SLF4J: each line at INFO on logger {@code skiff.APP.FUNCTION}. */
  public static Consumer<OutputLine> slf4jOutput() {
    return line ->
        org.slf4j.LoggerFactory.getLogger("skiff." + line.function().replace('/', '.'))
            .info("{}{}", line.callId().isEmpty() ? "" : "[" + line.callId() + "] ", line.line());
  }

  public String name() {
    return name;
  }

  synchronized SkiffClient client() {
    if (client == null) {
      client = SkiffClient.shared();
    }
    return client;
  }

  Consumer<OutputLine> output() {
    return output;
  }

  /** A function whose handler is a static method that takes one input: {@code Square::apply}. */
  public <I, O> FunctionBuilder<I, O> function(Handler<I, O> handler) {
    return new FunctionBuilder<>(this, MethodRef.of(handler));
  }

  /**
   * A function whose handler is a method on an instance ({@code Embedder::embed}): each container
   * makes one with the class's no-argument constructor and runs its {@link Enter} methods first.
   */
  public <T, I, O> FunctionBuilder<I, O> function(InstanceHandler<T, I, O> handler) {
    return new FunctionBuilder<>(this, MethodRef.of(handler));
  }

  synchronized void add(SkiffFunction<?, ?> f) {
    functions.removeIf(g -> g.id().equals(f.id()));
    functions.add(f);
  }

  /** The functions defined on this app. */
  public synchronized List<SkiffFunction<?, ?>> functions() {
    return List.copyOf(functions);
  }

  /**
   * Deploys this app's functions for as long as the returned run is open (like {@code modal run}):
   * ships the class path, deploys each function, streams its containers' output. Closing the run
   * stops the functions; their containers drain.
   */
  public AppRun run() {
    long since = System.currentTimeMillis();
    Deployment d = deploy();
    return new AppRun(this, d, since);
  }

  /**
   * Deploys this app's functions to stay, until deployed again (a new version) or stopped; callers
   * anywhere reach them by name ({@link SkiffFunction#lookup}). Deploying unchanged functions again
   * changes nothing, and their warm containers serve on.
   */
  public Deployment deploy() {
    List<SkiffFunction<?, ?>> fs = functions();
    if (fs.isEmpty()) {
      throw new IllegalStateException(
          "app " + name + " has no functions: define one with function()");
    }
    long start = System.nanoTime();
    // A fresh JVM spends most of a deploy loading classes: the class path is read and hashed, and
    // the JSON codec readied for the first call, while this thread connects.
    var shipping =
        java.util.concurrent.CompletableFuture.supplyAsync(
            () -> classPath != null ? ClassPath.of(classPath) : ClassPath.ofThisJvm(), BACKGROUND);
    java.util.concurrent.CompletableFuture.runAsync(Codec::warmUp, BACKGROUND);
    SkiffClient c = client();
    ClassPath cp;
    try {
      cp = shipping.join();
    } catch (java.util.concurrent.CompletionException e) {
      throw e.getCause() instanceof RuntimeException r ? r : e;
    }
    long uploaded;
    try {
      uploaded = cp.upload(c.control().stub());
    } catch (StatusRuntimeException e) {
      throw c.translate(e, "shipping the class path of app " + name);
    }
    List<String> warnings = new ArrayList<>();
    List<Long> versions = new ArrayList<>();
    for (SkiffFunction<?, ?> f : fs) {
      String image = c.build(f.definition().image()); // a name, or built from its steps once
      DeployResponse r;
      try {
        r =
            c.control()
                .stub()
                .deploy(
                    DeployRequest.newBuilder()
                        .setSpec(f.definition().spec(cp.digests(), image))
                        .build());
      } catch (StatusRuntimeException e) {
        throw c.translate(e, "deploying " + f.id());
      }
      versions.add(r.getFunction().getVersion());
      if (!r.getWarning().isEmpty()) {
        warnings.add(f.id() + ": " + r.getWarning());
      }
    }
    warnings.forEach(w -> System.err.println("skiff: " + w));
    return new Deployment(
        fs.stream().map(SkiffFunction::id).toList(),
        versions,
        cp.digests().size(),
        cp.bytes(),
        uploaded,
        warnings,
        (System.nanoTime() - start) / 1_000_000);
  }

  /**
   * What a deploy did.
   *
   * @param functions the functions' ids, {@code app/name}
   * @param versions their versions, in the same order
   * @param classPathEntries jars on the shipped class path
   * @param classPathBytes their size
   * @param uploadedBytes of that, what the scheduler did not have yet
   * @param warnings what placement already knows it cannot do (no host has the GPU asked for)
   * @param millis how long shipping and deploying took
   */
  public record Deployment(
      List<String> functions,
      List<Long> versions,
      int classPathEntries,
      long classPathBytes,
      long uploadedBytes,
      List<String> warnings,
      long millis) {}
}
