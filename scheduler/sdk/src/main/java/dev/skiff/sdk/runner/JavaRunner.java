package dev.skiff.sdk.runner;

import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skiff.sdk.Enter;
import dev.skiff.sdk.Exit;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;

/**
 * Skiff's Java runner: runs one Java function's handler in a container, call after call. It is the
 * Java counterpart of the Python runner ({@code skiff_runner.py}) and speaks the same protocol with
 * the worker, so the worker treats both alike.
 *
 * <p>Mounted into the container read-only (never baked into an image) with Jackson next to it, and
 * started by the worker as {@code java -cp RUNNER_JARS dev.skiff.sdk.runner.JavaRunner HANDLER
 * CODE_DIR CONCURRENCY}: HANDLER is {@code CLASS::METHOD} (a static method) or {@code CLASS#METHOD}
 * (a method of one instance per container, made with the class's no-argument constructor), CODE_DIR
 * holds the function's class path as jars named in order ({@code 000.jar}, ...), "-" for none. The
 * user's classes load in a class loader of their own whose parent has the runner and the SDK, so
 * {@link Enter} and {@link Exit} are the same annotations on both sides.
 *
 * <p>The channel is the process's stdin and stdout; whatever the handler prints through {@link
 * System#out} or {@link System#err} goes to stderr, each line of a call tagged with {@code "\x1e"
 * CALL_ID "\x1f"}, never into a result. Frames both ways: a 4-byte big-endian length, then UTF-8
 * JSON: see {@code skiff_runner.py}. A method takes at most one argument (the call's first
 * positional argument, or nothing), turned into the parameter's declared type (generics included)
 * by Jackson; its result goes back as JSON.
 *
 * <p>Methods annotated {@link Enter} run once, after the handler's class is loaded and before the
 * runner says it is ready, so a memory snapshot taken then holds their work (a warmed JVM, a loaded
 * model). Methods annotated {@link Exit} run once when the channel ends (the container is stopped)
 * or the process is asked to terminate.
 */
public final class JavaRunner {
  private static final int MAX_RESULT = 64 << 20;
  private static final int OUT_OF_MEMORY_EXIT = 137;
  private static final int TIMED_OUT_EXIT = 124;
  private static final long HOLD_NANOS = 2_000_000;

  private final ObjectMapper json = new ObjectMapper();
  private final DataInputStream in;
  private final OutputStream out;
  private final Object outLock = new Object();
  private final ByteArrayOutputStream held = new ByteArrayOutputStream();
  private final Map<String, Long> deadlines = new ConcurrentHashMap<>();
  private final AtomicBoolean exited = new AtomicBoolean();
  private Method method;
  private Object target;
  private JavaType argType;
  private com.fasterxml.jackson.databind.ObjectReader argReader;

  private JavaRunner(DataInputStream in, OutputStream out) {
    this.in = in;
    this.out = out;
  }

  public static void main(String[] args) throws Exception {
    OutputStream channel = new FileOutputStream(FileDescriptor.out);
    PrintStream stderr =
        new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
    PrintStream tagged =
        new PrintStream(new CallTaggedStream(stderr), true, StandardCharsets.UTF_8);
    System.setOut(tagged);
    System.setErr(tagged);
    JavaRunner r =
        new JavaRunner(new DataInputStream(new BufferedInputStream(System.in, 1 << 18)), channel);
    String handler = args[0];
    String codeDir = args.length > 1 && !args[1].equals("-") ? args[1] : null;
    int concurrency = args.length > 2 ? Integer.parseInt(args[2]) : 1;
    if (handler.equals("-")) {
      // A warm JVM for any function: say so, and wait for the function to load (a memory snapshot
      // of this process is taken here, and restored for each function's containers).
      r.warmUp();
      System.gc(); // a compact heap: the snapshot holds a quarter of the memory (110 -> 25 MB)
      tagged.flush();
      r.send(Map.of("ready", true, "pid", ProcessHandle.current().pid(), "waiting", true));
      JsonNode load = r.receive();
      if (load == null) {
        System.exit(0);
      }
      JsonNode l = load.path("load");
      handler = l.path("handler").asText();
      codeDir = l.path("code").asText().isEmpty() ? null : l.path("code").asText();
      concurrency = Math.max(1, l.path("concurrency").asInt(1));
      try {
        setEnvironment(l.path("env"));
      } catch (Throwable t) {
        r.send(Map.of("ready", false, "error", error(unwrap(t))));
        System.exit(3);
      }
    }
    try {
      r.load(handler, codeDir);
    } catch (Throwable t) { // loading runs the user's static initialisers and @Enter methods
      tagged.flush();
      r.send(Map.of("ready", false, "error", error(unwrap(t))));
      System.exit(3);
    }
    if (System.getenv("SKIFF_SNAPSHOT") != null) {
      System.gc(); // the worker checkpoints this process next: a compact heap restores faster
    }
    Runtime.getRuntime().addShutdownHook(new Thread(r::exit, "skiff-exit"));
    tagged.flush();
    r.send(Map.of("ready", true, "pid", ProcessHandle.current().pid()));
    Thread.ofPlatform().daemon().name("skiff-watchdog").start(r::watch);
    if (concurrency <= 1) {
      r.serveOneAtATime();
    } else {
      r.serveConcurrently(concurrency);
    }
    r.exit();
    tagged.flush();
    System.exit(0);
  }

  /**
   * Runs the JSON paths of a call a few thousand times, so the JIT has compiled them before a
   * memory snapshot: containers restored from it answer their first calls at full speed.
   */
  private void warmUp() throws IOException {
    long until = System.nanoTime() + 150_000_000L;
    for (int i = 0; System.nanoTime() < until || i < 200; i++) {
      byte[] request =
          json.writeValueAsBytes(
              Map.of(
                  "id",
                  "warm-" + i,
                  "args",
                  List.of(Map.of("n", i, "s", "x" + i)),
                  "timeout_ms",
                  0));
      JsonNode r = json.readTree(request);
      Map<?, ?> arg = json.readerFor(Map.class).readValue(r.path("args").path(0));
      ObjectNode reply = json.createObjectNode().put("id", r.path("id").asText()).put("ok", true);
      reply.set("output", json.valueToTree(arg));
      frame(reply);
    }
  }

  /**
   * Makes {@code env} part of this process's environment ({@link System#getenv}), for a warm JVM
   * started before its function was known. The JDK keeps the environment in an unmodifiable map
   * over a modifiable one; the runner is started with {@code --add-opens} for these two.
   */
  @SuppressWarnings("unchecked")
  private static void setEnvironment(JsonNode env) throws ReflectiveOperationException {
    if (env.isEmpty()) {
      return;
    }
    Class<?> pe = Class.forName("java.lang.ProcessEnvironment");
    java.lang.reflect.Field f = pe.getDeclaredField("theUnmodifiableEnvironment");
    f.setAccessible(true);
    Object unmodifiable = f.get(null);
    java.lang.reflect.Field m = unmodifiable.getClass().getDeclaredField("m");
    m.setAccessible(true);
    Map<String, String> live = (Map<String, String>) m.get(unmodifiable);
    env.fields().forEachRemaining(e -> live.put(e.getKey(), e.getValue().asText()));
  }

  /**
   * Loads the handler's class from the code's jars, makes its instance, runs its @Enter methods.
   */
  private void load(String handler, String codeDir) throws Exception {
    boolean onInstance = handler.contains("#");
    String[] parts = handler.split(onInstance ? "#" : "::", 2);
    if (parts.length != 2 || parts[0].isEmpty() || parts[1].isEmpty()) {
      throw new IllegalArgumentException(
          "handler must be CLASS::METHOD or CLASS#METHOD, got '" + handler + "'");
    }
    ClassLoader parent = JavaRunner.class.getClassLoader();
    ClassLoader loader = parent;
    if (codeDir != null) {
      List<URL> jars = new ArrayList<>();
      try (Stream<Path> s = Files.list(Path.of(codeDir))) {
        for (Path p : s.filter(p -> p.toString().endsWith(".jar")).sorted().toList()) {
          jars.add(p.toUri().toURL());
        }
      }
      loader = new URLClassLoader("skiff-function", jars.toArray(URL[]::new), parent);
    }
    Thread.currentThread().setContextClassLoader(loader);
    Class<?> cls = Class.forName(parts[0], true, loader);
    List<Method> named =
        Arrays.stream(cls.getDeclaredMethods())
            .filter(m -> m.getName().equals(parts[1]) && !m.isSynthetic() && !m.isBridge())
            .toList();
    if (named.size() != 1) {
      throw new NoSuchMethodException(
          named.isEmpty()
              ? cls.getName() + " has no method " + parts[1]
              : cls.getName()
                  + " has "
                  + named.size()
                  + " methods named "
                  + parts[1]
                  + ": a function's method must be the only one of its name");
    }
    method = named.get(0);
    if (method.getParameterCount() > 1) {
      throw new IllegalArgumentException(
          method + " takes " + method.getParameterCount() + " arguments: a function takes one");
    }
    if (Modifier.isStatic(method.getModifiers()) == onInstance) {
      throw new IllegalArgumentException(
          method
              + (onInstance
                  ? " is static: name it CLASS::METHOD"
                  : " is not static: name it CLASS#METHOD"));
    }
    method.setAccessible(true);
    if (method.getParameterCount() == 1) {
      argType = json.getTypeFactory().constructType(method.getGenericParameterTypes()[0]);
      argReader = json.readerFor(argType);
    }
    if (onInstance) {
      var ctor = cls.getDeclaredConstructor();
      ctor.setAccessible(true);
      target = ctor.newInstance();
    }
    enter(cls, target);
  }

  /**
   * The methods of {@code cls} with {@code annotation}, by name; instance ones need an instance.
   */
  /**
   * Runs the {@link Enter} methods of {@code cls} on {@code instance} (null for a function on a
   * static method) as a container does; for {@code SkiffFunction.local}, so a unit test sees the
   * container's rules.
   */
  public static void enter(Class<?> cls, Object instance) throws ReflectiveOperationException {
    for (Method m : lifecycle(cls, Enter.class, instance != null)) {
      m.invoke(Modifier.isStatic(m.getModifiers()) ? null : instance);
    }
  }

  /**
   * The methods of {@code cls} with {@code annotation}, by name; instance ones need a function on
   * an instance ({@code onInstance}).
   */
  private static List<Method> lifecycle(
      Class<?> cls,
      Class<? extends java.lang.annotation.Annotation> annotation,
      boolean onInstance) {
    List<Method> found = new ArrayList<>();
    for (Method m : cls.getDeclaredMethods()) {
      if (!m.isAnnotationPresent(annotation)) {
        continue;
      }
      if (m.getParameterCount() != 0) {
        throw new IllegalArgumentException(
            "@" + annotation.getSimpleName() + " method " + m + " must take no arguments");
      }
      if (!Modifier.isStatic(m.getModifiers()) && !onInstance) {
        throw new IllegalArgumentException(
            "@"
                + annotation.getSimpleName()
                + " method "
                + m
                + " is not static, but the function is a static method: name it CLASS#METHOD");
      }
      m.setAccessible(true);
      found.add(m);
    }
    found.sort(Comparator.comparing(Method::getName));
    return found;
  }

  /** Runs the @Exit methods, once, whether the channel ended or the process is terminated. */
  private void exit() {
    if (method == null || !exited.compareAndSet(false, true)) {
      return;
    }
    try {
      for (Method m : lifecycle(method.getDeclaringClass(), Exit.class, target != null)) {
        m.invoke(Modifier.isStatic(m.getModifiers()) ? null : target);
      }
    } catch (Throwable t) {
      System.err.println("an @Exit method failed: " + unwrap(t));
    }
    System.out.flush();
  }

  private void serveOneAtATime() throws IOException {
    long firstHeld = 0;
    for (JsonNode request; (request = receive()) != null; ) {
      byte[] reply = serve(request);
      synchronized (outLock) {
        held.writeBytes(reply);
      }
      long now = System.nanoTime();
      if (firstHeld == 0) {
        firstHeld = now;
      }
      // Answers wait for the batch while more requests are already here, but not for long.
      if (in.available() == 0 || now - firstHeld > HOLD_NANOS) {
        flush();
        firstHeld = 0;
      }
    }
    flush();
  }

  private void serveConcurrently(int concurrency) throws IOException {
    ExecutorService pool =
        Executors.newFixedThreadPool(
            concurrency, r -> Thread.ofPlatform().name("skiff-call").daemon().unstarted(r));
    for (JsonNode request; (request = receive()) != null; ) {
      JsonNode r = request;
      pool.execute(
          () -> {
            byte[] reply = serve(r);
            synchronized (outLock) {
              held.writeBytes(reply);
            }
            flush();
          });
    }
    pool.shutdown();
    try {
      pool.awaitTermination(365, TimeUnit.DAYS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** One call: its reply frame. */
  private byte[] serve(JsonNode request) {
    String id = request.path("id").asText();
    CallTaggedStream.CALL.set(id);
    long timeoutMs = request.path("timeout_ms").asLong();
    if (timeoutMs > 0) {
      deadlines.put(id, System.nanoTime() + timeoutMs * 1_000_000);
    }
    long start = System.nanoTime();
    ObjectNode reply = json.createObjectNode().put("id", id);
    String phase = "input";
    try {
      Object result;
      if (argType == null) {
        phase = "call";
        result = method.invoke(target);
      } else if (request.has(RAW)) {
        if (!argType.hasRawClass(byte[].class)) {
          throw new IllegalArgumentException(
              "raw bytes were sent, and only a byte[] parameter takes them");
        }
        byte[] value = request.get(RAW).binaryValue();
        phase = "call";
        result = method.invoke(target, value);
      } else {
        JsonNode arg = request.path("args").path(0);
        Object value = arg.isMissingNode() ? null : argReader.readValue(arg);
        phase = "call";
        result = method.invoke(target, value);
      }
      phase = "output";
      if (result instanceof byte[] raw && raw.length <= MAX_RESULT) {
        // bytes as they are: a frame saying so, then a frame of them
        reply.put("ok", true).put("raw", raw.length);
        reply.put("us", (System.nanoTime() - start) / 1000);
        byte[] head = frame(reply);
        byte[] tail = prefixed(raw);
        byte[] f = java.util.Arrays.copyOf(head, head.length + tail.length);
        System.arraycopy(tail, 0, f, head.length, tail.length);
        return f;
      }
      // written once, and carried into the reply frame as it is
      byte[] bytes = json.writeValueAsBytes(result);
      if (bytes.length > MAX_RESULT) {
        reply
            .put("ok", false)
            .set(
                "error",
                json.valueToTree(
                    error(
                        "ResultTooLarge",
                        "the handler's result is "
                            + bytes.length
                            + " bytes of JSON, over the "
                            + MAX_RESULT
                            + " a call may return",
                        "")));
      } else {
        reply
            .put("ok", true)
            .putRawValue(
                "output",
                new com.fasterxml.jackson.databind.util.RawValue(
                    new String(bytes, StandardCharsets.UTF_8)));
      }
    } catch (Throwable t) {
      Throwable cause = unwrap(t);
      if (cause instanceof OutOfMemoryError) {
        // The container is replaced: a JVM that ran out of memory is not trusted again.
        ObjectNode oom = json.createObjectNode().put("id", id).put("ok", false);
        oom.put("out_of_memory", true)
            .set(
                "error",
                json.valueToTree(error("OutOfMemoryError", "the handler ran out of memory", "")));
        sendNow(oom);
        Runtime.getRuntime().halt(OUT_OF_MEMORY_EXIT);
      }
      Map<String, String> e =
          switch (phase) {
            case "input" ->
                error(
                    "InputTypeMismatch",
                    "the input does not fit "
                        + method
                        + "'s parameter "
                        + argType
                        + ": "
                        + cause.getMessage(),
                    "");
            case "output" ->
                error(
                    "OutputNotSerializable",
                    "the handler's result cannot become JSON: " + cause.getMessage(),
                    "");
            default -> error(cause);
          };
      reply.put("ok", false).set("error", json.valueToTree(e));
    } finally {
      deadlines.remove(id);
      System.out.flush();
      CallTaggedStream.CALL.remove();
    }
    reply.put("us", (System.nanoTime() - start) / 1000);
    return frame(reply);
  }

  /** Ends the runner when a call runs past its timeout (a thread cannot be stopped safely). */
  private void watch() {
    while (true) {
      try {
        Thread.sleep(50);
      } catch (InterruptedException e) {
        return;
      }
      long now = System.nanoTime();
      List<String> late = new ArrayList<>();
      deadlines.forEach(
          (id, deadline) -> {
            if (deadline - now <= 0) {
              late.add(id);
            }
          });
      if (!late.isEmpty()) {
        for (String id : late) {
          ObjectNode m = json.createObjectNode().put("id", id).put("ok", false);
          m.put("timed_out", true)
              .set(
                  "error", json.valueToTree(error("Timeout", "the call ran past its timeout", "")));
          sendNow(m);
        }
        Runtime.getRuntime().halt(TIMED_OUT_EXIT);
      }
    }
  }

  private JsonNode receive() throws IOException {
    int length;
    try {
      length = in.readInt();
    } catch (EOFException end) {
      return null;
    }
    if (length < 0 || length > MAX_RESULT + (1 << 20)) {
      throw new IOException("a frame of " + length + " bytes");
    }
    byte[] body = new byte[length];
    in.readFully(body);
    JsonNode m = json.readTree(body);
    if (m.has("raw")) { // the call's argument as raw bytes, in the next frame
      int n = in.readInt();
      if (n != m.path("raw").asInt(-1)) {
        throw new IOException("a raw frame of " + n + " bytes, announced " + m.path("raw"));
      }
      byte[] raw = new byte[n];
      in.readFully(raw);
      ((ObjectNode) m).put(RAW, raw);
    }
    return m;
  }

  /** Where a request read with raw bytes keeps them (a name no worker message uses). */
  private static final String RAW = " raw";

  private byte[] frame(Object message) {
    try {
      return prefixed(json.writeValueAsBytes(message));
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** {@code body} as a frame: its 4-byte big-endian length, then it. */
  private static byte[] prefixed(byte[] body) {
    byte[] f = new byte[4 + body.length];
    f[0] = (byte) (body.length >>> 24);
    f[1] = (byte) (body.length >>> 16);
    f[2] = (byte) (body.length >>> 8);
    f[3] = (byte) body.length;
    System.arraycopy(body, 0, f, 4, body.length);
    return f;
  }

  private void send(Object message) throws IOException {
    byte[] f = frame(message);
    synchronized (outLock) {
      out.write(f);
      out.flush();
    }
  }

  /** Sends at once, with whatever was held before it; for the runner's last words. */
  private void sendNow(Object message) {
    byte[] f = frame(message);
    synchronized (outLock) {
      try {
        held.writeBytes(f);
        held.writeTo(out);
        held.reset();
        out.flush();
      } catch (IOException e) {
        // the worker is gone; nobody is left to tell
      }
    }
  }

  private void flush() {
    synchronized (outLock) {
      if (held.size() == 0) {
        return;
      }
      try {
        held.writeTo(out);
        out.flush();
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      } finally {
        held.reset();
      }
    }
  }

  private static Throwable unwrap(Throwable t) {
    while ((t instanceof InvocationTargetException || t instanceof ExceptionInInitializerError)
        && t.getCause() != null) {
      t = t.getCause();
    }
    return t;
  }

  private static Map<String, String> error(String type, String message, String traceback) {
    return Map.of("type", type, "message", message, "traceback", traceback);
  }

  /** A throwable as the protocol's ERROR: its class, message and stack trace with its causes. */
  private static Map<String, String> error(Throwable t) {
    StringWriter trace = new StringWriter();
    t.printStackTrace(new PrintWriter(trace));
    return error(
        t.getClass().getName(), t.getMessage() == null ? "" : t.getMessage(), trace.toString());
  }

  /** Standard output and error during calls: whole lines, each tagged with its call. */
  static final class CallTaggedStream extends OutputStream {
    static final ThreadLocal<String> CALL = new ThreadLocal<>();
    private final PrintStream raw;
    private final ThreadLocal<ByteArrayOutputStream> line =
        ThreadLocal.withInitial(ByteArrayOutputStream::new);

    CallTaggedStream(PrintStream raw) {
      this.raw = raw;
    }

    @Override
    public void write(int b) {
      ByteArrayOutputStream l = line.get();
      if (b == '\n') {
        emit(l);
      } else {
        l.write(b);
      }
    }

    @Override
    public void write(byte[] b, int off, int len) {
      ByteArrayOutputStream l = line.get();
      for (int i = off; i < off + len; i++) {
        if (b[i] == '\n') {
          emit(l);
        } else {
          l.write(b[i]);
        }
      }
    }

    @Override
    public void flush() {
      ByteArrayOutputStream l = line.get();
      if (l.size() > 0) {
        emit(l);
      }
      raw.flush();
    }

    private void emit(ByteArrayOutputStream l) {
      String call = CALL.get();
      byte[] text = l.toByteArray();
      l.reset();
      synchronized (raw) {
        if (call != null) {
          raw.write('\u001e');
          raw.writeBytes(call.getBytes(StandardCharsets.UTF_8));
          raw.write('\u001f');
        }
        raw.writeBytes(text);
        raw.write('\n');
        raw.flush();
      }
    }
  }
}
