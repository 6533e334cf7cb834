package dev.skiff.sdk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.testing.HostRootfs;
import dev.skiff.scheduler.LocalPlatform;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.state.LmdbControlState;
import dev.skiff.scheduler.worker.Worker;
import dev.skiff.sdk.tutorial.Bytes;
import dev.skiff.sdk.tutorial.Env;
import dev.skiff.sdk.tutorial.Failing;
import dev.skiff.sdk.tutorial.Greeter;
import dev.skiff.sdk.tutorial.Square;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java SDK as a user meets it, read top to bottom as a tutorial: define functions in Java, run
 * the app, call them every way there is, see the failures a caller must tell apart, call a Python
 * function by name. Everything is real: a scheduler and a worker on this host, gVisor sandboxes on
 * an image with a JVM (linked from the JDK running the test) and Python in it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(600)
class SdkTutorialTest {
  @TempDir static Path tmp;

  ImageStore store;
  SandboxRuntime rt;
  LmdbControlState state;
  LocalPlatform platform;
  SkiffClient client;

  @BeforeAll
  void startThePlatform() throws Exception {
    Environment.requireRunsc();
    store = ImageStore.open(tmp.resolve("home"));
    Path rootfs = HostRootfs.python().jvm("/opt/java").build(tmp.resolve("rootfs"));
    store.importImage(rootfs.toString(), ImageRef.parse("jvm:1"), ImportProgress.NONE);
    rt = SandboxRuntime.open(store, SandboxRuntime.Config.defaults());
    state = LmdbControlState.open(tmp.resolve("state"));
    platform =
        LocalPlatform.start(
            store,
            rt,
            state,
            new Worker.Options(
                "w1", 2, 8L << 30, List.of(), tmp.resolve("worker"), "/usr/bin/python3", 4));
    // A program finds the scheduler by itself (SkiffClient.connect()); here it is named.
    client = SkiffClient.connect(platform.target(), platform.clientToken(), null);
  }

  @AfterAll
  void stopThePlatform() throws Exception {
    for (AutoCloseable c : new AutoCloseable[] {client, platform, state, rt, store}) {
      if (c != null) {
        c.close();
      }
    }
  }

  /** Where this test's classes are: the class path the app ships. */
  private static Path testClasses() throws Exception {
    return Path.of(Square.class.getProtectionDomain().getCodeSource().getLocation().toURI());
  }

  @Test
  void defineRunAndCallJavaFunctions() throws Exception {
    // 1. An app, the image its functions run on (with the JVM in it), and its functions: method
    //    references, static or on an instance, each with its own resources and policies.
    List<OutputLine> output = new CopyOnWriteArrayList<>();
    App app = App.named("tutorial").client(client).classPath(testClasses()).output(output::add);
    Image image = Image.of("jvm:1").jvm("/opt/java/bin/java");
    SkiffFunction<Integer, Integer> square =
        app.function(Square::apply).name("square").image(image).memory("512M").build();
    SkiffFunction<Greeter.Request, Greeter.Greeting> greet =
        app.function(Greeter::greet).image(image).build();
    SkiffFunction<Integer, Integer> divide =
        app.function(Failing::divide)
            .image(image)
            .retries(Retries.fixed(1, Duration.ofMillis(10)))
            .build();
    SkiffFunction<Long, Long> sleep =
        app.function(Failing::sleep)
            .image(image)
            .timeout(Duration.ofSeconds(3))
            .concurrency(4)
            .build();
    SkiffFunction<String, String> env =
        app.function(Env::get).image(image).env("GREETING", "hello from the function").build();
    SkiffFunction<byte[], byte[]> reverse = app.function(Bytes::reverse).image(image).build();
    assertEquals("tutorial/greeter-greet", greet.id());

    // 2. Running the app ships this program's classes (only what the scheduler lacks) and deploys
    //    the functions until the run is closed.
    try (AppRun run = app.run()) {
      assertTrue(run.deployment().classPathBytes() > 0);

      // remote: call and wait
      assertEquals(16, square.remote(4));
      // map: in order, in parallel
      assertEquals(
          IntStream.rangeClosed(1, 200).map(i -> i * i).boxed().toList(),
          square.map(IntStream.rangeClosed(1, 200).boxed().toList()).toList());
      // spawn: a handle to get later; remoteAsync: a CompletableFuture
      FunctionCall<Integer> later = square.spawn(5);
      assertEquals(36, square.remoteAsync(6).get(60, TimeUnit.SECONDS));
      assertEquals(25, later.get(Duration.ofSeconds(60)));
      assertEquals(25, square.call(later.id()).get());

      // Records in, records out; an instance per container keeps its state, warmed by @Enter.
      Greeter.Greeting g = greet.remote(new Greeter.Request("Ada", List.of("Dr.")));
      assertEquals("hello Dr. Ada", g.text());
      assertEquals("enter", g.warmedBy());
      assertEquals(g.number() + 1, greet.remote(new Greeter.Request("Alan", List.of())).number());

      // The function's environment is the container's.
      assertEquals("hello from the function", env.remote("GREETING"));
      assertEquals("tutorial/env-get", env.remote("SKIFF_FUNCTION"));

      // Bytes go as they are, small or large: over 2 MiB (here 3 MiB each way) an input and a
      // result travel through the payload store, which the caller never sees.
      byte[] small = {1, 2, 3};
      assertArrayEquals(new byte[] {3, 2, 1}, reverse.remote(small));
      byte[] large = new byte[3 << 20];
      new java.util.SplittableRandom(7).nextBytes(large);
      assertArrayEquals(Bytes.reverse(large), reverse.remote(large));

      // 3. Failures a caller tells apart. The handler threw: its type, message, stack trace and
      //    causes, after the function's one retry.
      RemoteException thrown = assertThrows(RemoteException.class, () -> divide.remote(0));
      assertEquals("java.lang.IllegalStateException", thrown.remoteType());
      assertEquals("cannot divide by 0", thrown.remoteMessage());
      assertTrue(thrown.remoteStackTrace().contains("Failing.divide"), thrown.remoteStackTrace());
      RemoteException cause = assertInstanceOf(RemoteException.class, thrown.getCause());
      assertEquals("java.lang.ArithmeticException", cause.remoteType());
      assertEquals("/ by zero", cause.remoteMessage());
      // The handler ran past its timeout.
      assertThrows(FunctionTimeoutException.class, () -> sleep.remote(30_000L));
      // A spawned call cancelled before it ends.
      FunctionCall<Long> slow = sleep.spawn(2_000L);
      assertTrue(slow.cancel());
      assertThrows(CancellationException.class, slow::get);
      // An input that cannot become JSON fails at the call site, naming its type.
      @SuppressWarnings({"unchecked", "rawtypes"})
      SkiffFunction<Object, Object> raw = (SkiffFunction) square;
      IllegalArgumentException bad =
          assertThrows(IllegalArgumentException.class, () -> raw.remote(new Object()));
      assertTrue(bad.getMessage().contains("java.lang.Object"), bad.getMessage());
      // A map whose inputs throw stops with that exception, after the results before it.
      Iterable<Integer> broken =
          () ->
              new Iterator<>() {
                int i;

                @Override
                public boolean hasNext() {
                  return true;
                }

                @Override
                public Integer next() {
                  if (i == 50) {
                    throw new IllegalStateException("input 50 is broken");
                  }
                  return i++;
                }
              };
      IllegalStateException stopped =
          assertThrows(IllegalStateException.class, () -> square.map(broken).toList());
      assertEquals("input 50 is broken", stopped.getMessage());
      // A map that returns failures as values runs every input.
      List<MapResult<Integer>> results =
          divide.mapResults(List.of(1, 0, 4), MapOptions.defaults()).toList();
      assertEquals(100, results.get(0).get());
      assertInstanceOf(
          RemoteException.class,
          assertInstanceOf(MapResult.Failed.class, results.get(1)).exception());
      assertEquals(25, results.get(2).get());

      // 4. What containers print comes here, tagged with function and call.
      await(
          () ->
              output.stream().anyMatch(l -> l.line().equals("squaring 4") && !l.callId().isEmpty()),
          "the square's print, with its call, in " + output);
      await(
          () -> output.stream().anyMatch(l -> l.line().equals("warming up")),
          "@Enter's print in " + output);

      // 5. The same handlers run in this process, for unit tests.
      assertEquals(49, square.local(7));
      assertEquals("enter", greet.local(new Greeter.Request("x", List.of())).warmedBy());
    }
    // Closing the run stopped its functions; their containers ran their @Exit methods as they went.
    IllegalStateException after = assertThrows(IllegalStateException.class, () -> square.remote(1));
    assertTrue(after.getMessage().contains("stopped"), after.getMessage());
    await(
        () -> {
          List<String> lines = new CopyOnWriteArrayList<>();
          client.control().logs(greet.id(), null, false, l -> lines.add(l.getLine()));
          return lines.stream().anyMatch(l -> l.startsWith("bye after "));
        },
        "the greeter's @Exit line in its logs");
  }

  @Test
  void callAPythonFunctionByName() throws Exception {
    Path code = Files.createDirectories(tmp.resolve("py"));
    Files.writeString(
        code.resolve("text.py"),
        "def shout(s):\n    return s.upper() + '!'\n"
            + "def lengths(words):\n    return {w: len(w) for w in words}\n");
    try (ControlClient c = platform.client()) {
      for (String fn : List.of("shout", "lengths")) {
        c.deploy(
            FunctionSpec.newBuilder()
                .setApp("nlp")
                .setName(fn)
                .setImage("jvm:1")
                .setLanguage("python")
                .setHandler("text:" + fn)
                .build(),
            code);
      }
    }
    SkiffFunction<String, String> shout =
        SkiffFunction.lookup(client, "nlp", "shout", String.class, String.class);
    assertEquals("HI!", shout.remote("hi"));
    SkiffFunction<List<String>, java.util.Map<String, Integer>> lengths =
        SkiffFunction.lookup(
            "nlp", "lengths", null, new com.fasterxml.jackson.core.type.TypeReference<>() {});
    assertThrows(UnsupportedOperationException.class, () -> shout.local("x"));
    assertEquals(List.of("HEY!", "YO!"), shout.map(List.of("hey", "yo")).toList());
    assertTrue(lengths.id().equals("nlp/lengths"));
  }

  @Test
  void aMemorySnapshotStartsLaterContainersWarm() throws Exception {
    App app = App.named("snap").client(client).classPath(testClasses()).output(l -> {});
    SkiffFunction<Greeter.Request, Greeter.Greeting> greet =
        app.function(Greeter::greet)
            .image(Image.of("jvm:1").jvm("/opt/java/bin/java"))
            .memorySnapshot(true)
            .scaledownWindow(Duration.ofSeconds(1))
            .build();
    try (AppRun run = app.run()) {
      for (int round = 0; round < 2; round++) {
        Greeter.Greeting g = greet.remote(new Greeter.Request("Grace", List.of()));
        // every container starts from the snapshot taken after @Enter, before any call
        assertEquals("enter", g.warmedBy());
        assertEquals(1, g.number());
        await(
            () ->
                client.control().containers().stream()
                    .noneMatch(c -> c.getFunctionId().equals(greet.id())),
            "the container to scale to zero");
      }
    }
  }

  @Test
  void badDefinitionsAreRefusedWithWhatToDo() {
    App app = App.named("bad").client(client);
    IllegalArgumentException lambda =
        assertThrows(
            IllegalArgumentException.class, () -> app.function((Integer x) -> x + 1).build());
    assertTrue(lambda.getMessage().contains("not a lambda"), lambda.getMessage());
    IllegalStateException noImage =
        assertThrows(IllegalStateException.class, () -> app.function(Square::apply).build());
    assertTrue(noImage.getMessage().contains(".image("), noImage.getMessage());
    assertThrows(IllegalArgumentException.class, () -> App.named("Bad Name"));
    assertThrows(IllegalArgumentException.class, () -> app.function(Square::apply).memory("lots"));
    assertThrows(IllegalArgumentException.class, () -> app.function(Square::apply).gpu("H200x"));
    IllegalStateException notDeployed =
        assertThrows(
            IllegalStateException.class,
            () ->
                App.named("never")
                    .client(client)
                    .function(Square::apply)
                    .image(Image.of("jvm:1"))
                    .build()
                    .remote(2));
    assertTrue(notDeployed.getMessage().contains("deploy"), notDeployed.getMessage());
  }

  private static void await(java.util.function.BooleanSupplier done, String what)
      throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!done.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(50);
    }
  }
}
