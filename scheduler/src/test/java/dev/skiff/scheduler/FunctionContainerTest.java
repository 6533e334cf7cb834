package dev.skiff.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.testing.HostRootfs;
import dev.skiff.scheduler.runner.Outcome;
import dev.skiff.scheduler.runner.PythonRunner;
import dev.skiff.scheduler.worker.FunctionContainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A function's container for real: gVisor, a Python image made of the host's Python, Skiff's runner
 * bound in, the handler's code bound in, calls over the runner's stdin and stdout.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(180)
class FunctionContainerTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path tmp;

  ImageStore store;
  SandboxRuntime rt;
  ScheduledExecutorService timers;
  Path runner;
  Path code;
  final List<String> logs = new CopyOnWriteArrayList<>();
  final List<String> tagged = new CopyOnWriteArrayList<>();

  @BeforeAll
  void setUp() throws Exception {
    Environment.requireRunsc();
    store = ImageStore.open(tmp.resolve("home"));
    Path rootfs = HostRootfs.python().build(tmp.resolve("rootfs"));
    store.importImage(rootfs.toString(), ImageRef.parse("py:1"), ImportProgress.NONE);
    rt = SandboxRuntime.open(store, SandboxRuntime.Config.defaults());
    timers = Executors.newSingleThreadScheduledExecutor();
    runner = PythonRunner.install(tmp.resolve("runner"));
    code = Files.createDirectories(tmp.resolve("code"));
    Files.writeString(
        code.resolve("handlers.py"),
        """
        import os, sys, time
        def square(x):
            print("squaring", x)
            sys.stdout.flush()
            return x * x
        def greet(name, punctuation="!"):
            return {"greeting": "hello " + name + punctuation}
        def fail(x):
            raise ValueError("cannot take " + str(x))
        def not_json(x):
            return object()
        def sleep(seconds):
            time.sleep(seconds)
            return seconds
        def crash(code):
            os._exit(code)
        def nap(i):
            print("napping", i)
            time.sleep(1)
            return i
        def big(mib):
            return "x" * (mib << 20)
        def hog(mib):
            blocks = [bytearray(1 << 20) for _ in range(mib)]
            return len(blocks)
        """);
    Files.writeString(code.resolve("broken.py"), "raise RuntimeError('broken at import')\n");
  }

  @AfterAll
  void tearDown() throws IOException {
    if (timers != null) {
      timers.shutdownNow();
    }
    if (rt != null) {
      rt.close();
    }
    if (store != null) {
      store.close();
    }
  }

  private FunctionContainer.Spec spec(String handler, int concurrency, SandboxOptions o) {
    return FunctionContainer.Spec.python(
        ImageSpec.parse("py:1"), "/usr/bin/python3", handler, code, concurrency, o);
  }

  private void log(String container, String call, String line) {
    logs.add(line);
    tagged.add(call + ": " + line);
  }

  private FunctionContainer start(String handler, SandboxOptions o) throws IOException {
    return FunctionContainer.start(rt, spec(handler, 1, o), runner, timers, this::log);
  }

  private static Outcome call(FunctionContainer c, String args, String kwargs, Duration timeout)
      throws Exception {
    return c.call(
            "call-" + System.nanoTime(),
            args == null ? null : JSON.readTree(args),
            kwargs == null ? null : JSON.readTree(kwargs),
            timeout)
        .get();
  }

  @Test
  void callsReturnResultsAndPrintsGoToTheLogsNeverIntoResults() throws Exception {
    try (FunctionContainer c = start("handlers:square", SandboxOptions.defaults())) {
      for (int x : new int[] {3, 12}) {
        Outcome o = call(c, "[" + x + "]", null, Duration.ofSeconds(30));
        assertEquals(x * x, assertInstanceOf(Outcome.Success.class, o).output().asInt());
      }
      for (int i = 0; i < 50 && !logs.contains("squaring 12"); i++) {
        Thread.sleep(50);
      }
      assertTrue(logs.contains("squaring 3") && logs.contains("squaring 12"), logs.toString());
    }
    try (FunctionContainer c = start("handlers:greet", SandboxOptions.defaults())) {
      Outcome o = call(c, null, "{\"name\": \"skiff\"}", Duration.ofSeconds(30));
      assertEquals(
          "hello skiff!",
          assertInstanceOf(Outcome.Success.class, o).output().path("greeting").asText());
    }
  }

  @Test
  void aHandlersErrorComesBackWithItsTracebackAndTheContainerServesOn() throws Exception {
    try (FunctionContainer c = start("handlers:fail", SandboxOptions.defaults())) {
      Outcome.HandlerError e =
          assertInstanceOf(
              Outcome.HandlerError.class, call(c, "[7]", null, Duration.ofSeconds(30)));
      assertEquals("ValueError", e.type());
      assertEquals("cannot take 7", e.message());
      assertTrue(e.traceback().contains("in fail"), e.traceback());
      assertTrue(c.alive());
      assertInstanceOf(Outcome.HandlerError.class, call(c, "[8]", null, Duration.ofSeconds(30)));
    }
    try (FunctionContainer c = start("handlers:not_json", SandboxOptions.defaults())) {
      Outcome.HandlerError e =
          assertInstanceOf(
              Outcome.HandlerError.class, call(c, "[1]", null, Duration.ofSeconds(30)));
      assertTrue(e.message().contains("not JSON"), e.message());
    }
  }

  @Test
  void aHandlerThatCannotBeImportedSaysWhy() {
    FunctionContainer.ImportFailedException e =
        assertThrows(
            FunctionContainer.ImportFailedException.class,
            () -> start("broken:anything", SandboxOptions.defaults()));
    assertEquals("RuntimeError", e.error().type());
    assertTrue(e.getMessage().contains("broken at import"), e.getMessage());
    assertThrows(
        FunctionContainer.ImportFailedException.class,
        () -> start("handlers:no_such_function", SandboxOptions.defaults()));
  }

  @Test
  void aCallPastItsTimeoutKillsTheContainer() throws Exception {
    try (FunctionContainer c = start("handlers:sleep", SandboxOptions.defaults())) {
      long t0 = System.nanoTime();
      Outcome o = call(c, "[30]", null, Duration.ofSeconds(1));
      assertEquals(new Outcome.TimedOut(1000), o);
      assertTrue(System.nanoTime() - t0 < 15e9, "took " + (System.nanoTime() - t0) / 1e9 + " s");
      assertFalse(c.alive());
      assertInstanceOf(Outcome.Crashed.class, call(c, "[1]", null, null));
    }
  }

  @Test
  void aHandlerThatKillsItsProcessCrashesTheCall() throws Exception {
    try (FunctionContainer c = start("handlers:crash", SandboxOptions.defaults())) {
      Outcome o = call(c, "[3]", null, Duration.ofSeconds(30));
      assertTrue(assertInstanceOf(Outcome.Crashed.class, o).why().contains("exit 3"), o.toString());
      assertFalse(c.alive());
    }
  }

  @Test
  void overlappingCallsRunAtOnceAndTheirLinesKeepTheirCall() throws Exception {
    try (FunctionContainer c =
        FunctionContainer.start(
            rt, spec("handlers:nap", 4, SandboxOptions.defaults()), runner, timers, this::log)) {
      long t0 = System.nanoTime();
      List<java.util.concurrent.CompletableFuture<Outcome>> calls = new java.util.ArrayList<>();
      for (int i = 0; i < 4; i++) {
        calls.add(
            c.call("call-nap-" + i, JSON.readTree("[" + i + "]"), null, Duration.ofSeconds(30)));
      }
      for (int i = 0; i < 4; i++) {
        assertEquals(
            i, assertInstanceOf(Outcome.Success.class, calls.get(i).get()).output().asInt());
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      assertTrue(seconds < 3.5, "4 calls of 1 s each took " + seconds + " s: they did not overlap");
      for (int i = 0; i < 4; i++) {
        String want = "call-nap-" + i + ": napping " + i;
        for (int w = 0; w < 50 && !tagged.contains(want); w++) {
          Thread.sleep(50);
        }
        assertTrue(tagged.contains(want), want + " not in " + tagged);
      }
    }
  }

  @Test
  void aHandlerOverItsMemoryLimitIsKilledForMemory() throws Exception {
    SandboxOptions small = SandboxOptions.builder().memory(128L << 20).build();
    try (FunctionContainer c = start("handlers:hog", small)) {
      Outcome o = call(c, "[1024]", null, Duration.ofSeconds(60));
      assertInstanceOf(Outcome.OutOfMemory.class, o, o + " " + logs);
      assertFalse(c.alive());
      assertTrue(c.ended().get(10, java.util.concurrent.TimeUnit.SECONDS).contains("memory"));
    }
  }

  @Test
  void aSnapshotTakenAfterTheImportRestoresContainersThatServeCalls() throws Exception {
    FunctionContainer.Spec spec = spec("handlers:square", 1, SandboxOptions.defaults());
    dev.skiff.runtime.Snapshot snap =
        FunctionContainer.startAndSnapshot(rt, spec, runner, timers, this::log, "fc-square");
    for (int round = 0; round < 2; round++) {
      try (FunctionContainer c =
          FunctionContainer.restore(rt, snap, spec, runner, timers, this::log)) {
        Outcome o = call(c, "[" + (5 + round) + "]", null, Duration.ofSeconds(30));
        assertEquals(
            (5 + round) * (5 + round), assertInstanceOf(Outcome.Success.class, o).output().asInt());
      }
    }
  }

  @Test
  void aResultOverTheLimitIsAnErrorAndTheContainerServesOn() throws Exception {
    try (FunctionContainer c = start("handlers:big", SandboxOptions.defaults())) {
      Outcome.HandlerError e =
          assertInstanceOf(
              Outcome.HandlerError.class, call(c, "[65]", null, Duration.ofSeconds(30)));
      assertEquals("ResultTooLarge", e.type());
      assertEquals(
          1L << 20,
          assertInstanceOf(Outcome.Success.class, call(c, "[1]", null, Duration.ofSeconds(30)))
              .output()
              .asText()
              .length());
    }
  }
}
