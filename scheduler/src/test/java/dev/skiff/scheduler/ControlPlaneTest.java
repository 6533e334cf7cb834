package dev.skiff.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.testing.HostRootfs;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.client.Tokens;
import dev.skiff.scheduler.proto.Autoscaling;
import dev.skiff.scheduler.proto.CallInfo;
import dev.skiff.scheduler.proto.CallRequest;
import dev.skiff.scheduler.proto.ControlGrpc;
import dev.skiff.scheduler.proto.DeployResponse;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.LogLine;
import dev.skiff.scheduler.proto.Resources;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.RetryPolicy;
import dev.skiff.scheduler.proto.Status;
import dev.skiff.scheduler.state.LmdbControlState;
import dev.skiff.scheduler.worker.Worker;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control plane end to end in one process: a scheduler on LMDB, one worker on a real gVisor
 * runtime, clients over gRPC on loopback, Python handlers in real sandboxes.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(300)
class ControlPlaneTest {
  @TempDir static Path tmp;

  ImageStore store;
  SandboxRuntime rt;
  LmdbControlState state;
  LocalPlatform platform;
  ControlClient client;
  Path code;
  String clientToken;
  String workerToken;

  @BeforeAll
  void setUp() throws Exception {
    Environment.requireRunsc();
    store = ImageStore.open(tmp.resolve("home"));
    Path rootfs = HostRootfs.python().build(tmp.resolve("rootfs"));
    store.importImage(rootfs.toString(), ImageRef.parse("py:1"), ImportProgress.NONE);
    rt = SandboxRuntime.open(store, SandboxRuntime.Config.defaults());
    state = LmdbControlState.open(tmp.resolve("state"));
    platform =
        LocalPlatform.start(
            store,
            rt,
            state,
            new Worker.Options(
                "w1",
                2,
                8L << 30,
                List.of("A100-80GB"),
                tmp.resolve("worker"),
                "/usr/bin/python3",
                4));
    clientToken = platform.clientToken();
    workerToken = platform.workerToken();
    client = platform.client();
    code = Files.createDirectories(tmp.resolve("code"));
    Files.writeString(
        code.resolve("handlers.py"),
        """
        import os, sys, time
        attempts = 0
        def square(x):
            print("squaring", x)
            return x * x
        def fail(x):
            raise ValueError("cannot take " + str(x))
        def flaky(x):
            global attempts
            attempts += 1
            if attempts < 3:
                raise RuntimeError("attempt %d fails" % attempts)
            return attempts
        def sleep(seconds):
            time.sleep(seconds)
            return seconds
        def crash(code):
            os._exit(code)
        def env(name):
            return os.environ.get(name)
        def size(s):
            return len(s)
        def blob(n):
            return "y" * n
        def echo(x):
            return x
        def rawrev(b):
            return bytes(reversed(b))
        def tobytes(s):
            return s.encode()
        """);
    Files.writeString(code.resolve("broken.py"), "raise RuntimeError('broken at import')\n");
  }

  @AfterAll
  void tearDown() throws Exception {
    for (AutoCloseable c : new AutoCloseable[] {client, platform, state, rt, store}) {
      if (c != null) {
        c.close();
      }
    }
  }

  private FunctionSpec.Builder fn(String name, String handler) {
    return FunctionSpec.newBuilder()
        .setApp("test")
        .setName(name)
        .setImage("py:1")
        .setLanguage("python")
        .setHandler(handler);
  }

  private DeployResponse deploy(FunctionSpec.Builder spec) throws IOException {
    return client.deploy(spec.build(), code);
  }

  private static Input args(String json) {
    return ControlClient.input(json, null);
  }

  private static void await(String what, BooleanSupplier ok) throws InterruptedException {
    for (int i = 0; i < 300; i++) {
      if (ok.getAsBoolean()) {
        return;
      }
      Thread.sleep(100);
    }
    throw new AssertionError("timed out waiting for " + what);
  }

  @Test
  void aCallRunsTheHandlerAndItsPrintsAreInTheCallsLogs() throws Exception {
    DeployResponse d = deploy(fn("square", "handlers:square"));
    assertEquals(1, d.getFunction().getVersion());
    assertEquals("", d.getWarning());
    Result r = client.call("test/square", args("[7]"), null);
    assertEquals(Status.SUCCESS, r.getStatus(), r.toString());
    assertEquals("49", r.getOutputJson().toStringUtf8());
    assertEquals(1, r.getAttempts());
    Result again = client.call("test/square", args("[8]"), null);
    assertEquals("64", again.getOutputJson().toStringUtf8());
    List<String> lines = new ArrayList<>();
    await(
        "the call's log line",
        () -> {
          lines.clear();
          client.logs(null, r.getCallId(), false, l -> lines.add(l.getLine()));
          return lines.contains("squaring 7");
        });
    assertEquals(List.of("squaring 7"), lines);
    List<String> all = new ArrayList<>();
    await(
        "the function's log lines",
        () -> {
          all.clear();
          client.logs("test/square", null, false, l -> all.add(l.getCallId() + " " + l.getLine()));
          return all.contains(again.getCallId() + " squaring 8");
        });
    assertTrue(all.contains(r.getCallId() + " squaring 7"), all.toString());
    assertEquals(
        1,
        client.containers().stream().filter(c -> c.getFunctionId().equals("test/square")).count());
  }

  @Test
  void mapReturnsEveryResultOnce() throws Exception {
    deploy(fn("map", "handlers:square").setConcurrency(4));
    Map<Long, Result> results = new ConcurrentHashMap<>();
    List<Long> duplicates = Collections.synchronizedList(new ArrayList<>());
    client.map(
        "test/map",
        IntStream.range(0, 300).mapToObj(i -> args("[" + i + "]")).iterator(),
        64,
        (i, r) -> {
          if (results.put(i, r) != null) {
            duplicates.add(i);
          }
        });
    assertEquals(List.of(), duplicates);
    assertEquals(300, results.size());
    for (long i = 0; i < 300; i++) {
      assertEquals(Status.SUCCESS, results.get(i).getStatus());
      assertEquals(Long.toString(i * i), results.get(i).getOutputJson().toStringUtf8());
    }
  }

  @Test
  void aHandlersErrorComesBackTypedWithItsTracebackAfterItsRetries() throws Exception {
    deploy(
        fn("fail", "handlers:fail")
            .setRetries(RetryPolicy.newBuilder().setMaxRetries(2).setInitialDelayMs(50)));
    Result r = client.call("test/fail", args("[5]"), null);
    assertEquals(Status.HANDLER_ERROR, r.getStatus());
    assertEquals("ValueError", r.getFailure().getType());
    assertEquals("cannot take 5", r.getFailure().getMessage());
    assertTrue(r.getFailure().getTraceback().contains("in fail"), r.getFailure().getTraceback());
    assertEquals(3, r.getAttempts());

    deploy(
        fn("flaky", "handlers:flaky")
            .setRetries(RetryPolicy.newBuilder().setMaxRetries(3).setInitialDelayMs(50)));
    Result ok = client.call("test/flaky", args("[1]"), null);
    assertEquals(Status.SUCCESS, ok.getStatus(), ok.toString());
    assertEquals("3", ok.getOutputJson().toStringUtf8());
    assertEquals(3, ok.getAttempts());
  }

  @Test
  void aCallPastItsTimeoutTimesOutAndItsContainerIsReplaced() throws Exception {
    deploy(fn("sleep", "handlers:sleep").setTimeoutMs(1000));
    Result r = client.call("test/sleep", args("[30]"), null);
    assertEquals(Status.TIMEOUT, r.getStatus(), r.toString());
    Result next = client.call("test/sleep", args("[0]"), null);
    assertEquals(Status.SUCCESS, next.getStatus(), next.toString());
  }

  @Test
  void aHandlerThatCrashesItsProcessIsRetriedByThePlatformThenFails() throws Exception {
    deploy(fn("crash", "handlers:crash"));
    Result r = client.call("test/crash", args("[3]"), null);
    assertEquals(Status.INTERNAL, r.getStatus(), r.toString());
    assertTrue(r.getFailure().getMessage().contains("exit 3"), r.getFailure().getMessage());
    assertEquals(0, r.getAttempts(), "crashes do not count against the retry policy");
  }

  @Test
  void aHandlerThatDoesNotImportFailsItsCallsWithTheImportError() throws Exception {
    deploy(fn("broken", "broken:anything"));
    Result r = client.call("test/broken", args("[1]"), null);
    assertEquals(Status.HANDLER_ERROR, r.getStatus(), r.toString());
    assertTrue(r.getFailure().getMessage().contains("broken at import"), r.toString());
    assertTrue(r.getFailure().getTraceback().contains("RuntimeError"), r.toString());
  }

  @Test
  void spawnGetAndCancel() throws Exception {
    deploy(fn("spawn", "handlers:sleep"));
    String id = client.spawn("test/spawn", args("[0.2]"));
    Result r = client.get(id, Duration.ofSeconds(60));
    assertEquals(Status.SUCCESS, r.getStatus(), r.toString());
    assertEquals("0.2", r.getOutputJson().toStringUtf8());
    assertFalse(client.cancel(id, false), "a finished call cannot be cancelled");

    String slow = client.spawn("test/spawn", args("[60]"));
    Result pending = client.get(slow, Duration.ofMillis(300));
    assertTrue(
        pending.getStatus() == Status.PENDING || pending.getStatus() == Status.RUNNING,
        pending.toString());
    assertTrue(client.cancel(slow, true));
    assertEquals(Status.CANCELLED, client.get(slow, Duration.ofSeconds(10)).getStatus());
  }

  @Test
  void whatNoWorkerHasIsAVisibleWaitNotASilentHang() throws Exception {
    DeployResponse d =
        deploy(fn("h100", "handlers:square").setResources(Resources.newBuilder().addGpu("H100")));
    assertTrue(d.getWarning().contains("H100"), d.getWarning());
    String id = client.spawn("test/h100", args("[2]"));
    await(
        "the call to say why it waits",
        () -> {
          CallInfo c =
              client.calls(10, "test/h100").stream()
                  .filter(x -> x.getCallId().equals(id))
                  .findFirst()
                  .orElseThrow();
          return c.getWaiting().contains("H100");
        });
    assertTrue(
        client.functions().stream()
            .anyMatch(
                f ->
                    f.getFunction().getId().equals("test/h100")
                        && f.getWaiting().contains("H100")));
    client.cancel(id, false);

    deploy(
        fn("gpu", "handlers:env")
            .setResources(Resources.newBuilder().addGpu("H100").addGpu("A100-80GB")));
    Result r = client.call("test/gpu", args("[\"NVIDIA_VISIBLE_DEVICES\"]"), null);
    assertEquals("\"0\"", r.getOutputJson().toStringUtf8(), "the fallback GPU was given");
  }

  @Test
  void badRequestsGetClearErrorsAndDisturbNothing() throws Exception {
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class, () -> client.call("test/none", args("[1]"), null));
    assertEquals(io.grpc.Status.Code.NOT_FOUND, e.getStatus().getCode());
    deploy(fn("bad", "handlers:square"));
    e =
        assertThrows(
            StatusRuntimeException.class, () -> client.call("test/bad", args("{not json"), null));
    assertEquals(io.grpc.Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    // over 2 MiB inline (a client that does not send it as a payload)
    String big = "[\"" + "x".repeat(3 << 20) + "\"]";
    ControlGrpc.ControlBlockingStub raw =
        ControlGrpc.newBlockingStub(client.channel())
            .withCallCredentials(Tokens.bearer(clientToken));
    e =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                raw.call(
                    CallRequest.newBuilder()
                        .setFunctionId("test/bad")
                        .setInput(args(big))
                        .build()));
    assertEquals(io.grpc.Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
    // a payload nobody uploaded
    e =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                raw.call(
                    CallRequest.newBuilder()
                        .setFunctionId("test/bad")
                        .setInput(Input.newBuilder().setPayload("sha256:" + "0".repeat(64)))
                        .build()));
    assertEquals(io.grpc.Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertTrue(e.getMessage().contains("no payload"), e.getMessage());
    e =
        assertThrows(
            StatusRuntimeException.class,
            () -> client.deploy(fn("Bad Name", "handlers:square").build(), null));
    assertEquals(io.grpc.Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    try (ControlClient stranger =
        new ControlClient(ControlClient.channel(platform.target(), null), workerToken)) {
      e = assertThrows(StatusRuntimeException.class, stranger::functions);
      assertEquals(io.grpc.Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    }
    assertEquals("9", client.call("test/bad", args("[3]"), null).getOutputJson().toStringUtf8());
  }

  @Test
  void payloadsOver2MiBGoThroughThePayloadStoreBothWays() throws Exception {
    deploy(fn("size", "handlers:size"));
    deploy(fn("blob", "handlers:blob"));
    deploy(fn("echo", "handlers:echo"));
    String three = "x".repeat(3 << 20);
    Result r = client.call("test/size", args("[\"" + three + "\"]"), null);
    assertEquals(Status.SUCCESS, r.getStatus(), r.getFailure().toString());
    assertEquals(Integer.toString(3 << 20), r.getOutputJson().toStringUtf8());
    Result out = client.call("test/blob", args("[" + (5 << 20) + "]"), null);
    assertEquals(Status.SUCCESS, out.getStatus(), out.getFailure().toString());
    assertEquals("\"" + "y".repeat(5 << 20) + "\"", out.getOutputJson().toStringUtf8());
    assertEquals("", out.getOutputPayload(), "the client fetched the output");
    // spawn and get, and a map with large inputs and outputs mixed with small ones
    String id = client.spawn("test/blob", args("[" + (3 << 20) + "]"));
    assertEquals((3 << 20) + 2, client.get(id, Duration.ofSeconds(60)).getOutputJson().size());
    Map<Long, Result> results = new ConcurrentHashMap<>();
    List<String> inputs = List.of(three, "small", three + "z", "tiny");
    client.map(
        "test/echo", inputs.stream().map(s -> args("[\"" + s + "\"]")).iterator(), 2, results::put);
    for (int i = 0; i < inputs.size(); i++) {
      assertEquals(
          "\"" + inputs.get(i) + "\"", results.get((long) i).getOutputJson().toStringUtf8());
    }
    // the limits: a result over 64 MiB is the handler's error; an input over it never leaves
    Result tooBig = client.call("test/blob", args("[" + (65 << 20) + "]"), null);
    assertEquals(Status.HANDLER_ERROR, tooBig.getStatus());
    assertEquals("ResultTooLarge", tooBig.getFailure().getType());
    String huge = "[\"" + "x".repeat(65 << 20) + "\"]";
    IllegalArgumentException refused =
        assertThrows(
            IllegalArgumentException.class, () -> client.call("test/size", args(huge), null));
    assertTrue(refused.getMessage().contains("64 MiB"), refused.getMessage());
    assertEquals(
        "5", client.call("test/size", args("[\"hello\"]"), null).getOutputJson().toStringUtf8());
  }

  @Test
  void bytesTravelRawBothWaysInlineAndThroughThePayloadStore() throws Exception {
    deploy(fn("raw", "handlers:rawrev"));
    java.util.Random random = new java.util.Random(3);
    for (int n : new int[] {0, 5, 3 << 20}) {
      byte[] in = new byte[n];
      random.nextBytes(in);
      var r =
          client.call(
              "test/raw",
              Input.newBuilder().setRaw(com.google.protobuf.ByteString.copyFrom(in)).build(),
              null);
      assertEquals(Status.SUCCESS, r.getStatus(), r.getFailure().toString());
      assertTrue(r.hasOutputRaw(), "raw out for " + n + " bytes");
      byte[] out = r.getOutputRaw().toByteArray();
      assertEquals(n, out.length);
      for (int i = 0; i < n; i++) {
        if (out[i] != in[n - 1 - i]) {
          throw new AssertionError("byte " + i + " of " + n + " is not reversed");
        }
      }
    }
    // bytes returned for a JSON input come back raw too
    deploy(fn("tobytes", "handlers:tobytes"));
    var r = client.call("test/tobytes", args("[\"h\\u00e9llo\"]"), null);
    assertEquals("héllo", r.getOutputRaw().toStringUtf8());
    // raw input and JSON at once is refused
    StatusRuntimeException both =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                client.call(
                    "test/raw",
                    Input.newBuilder()
                        .setRaw(com.google.protobuf.ByteString.copyFromUtf8("x"))
                        .setArgsJson(com.google.protobuf.ByteString.copyFromUtf8("[1]"))
                        .build(),
                    null));
    assertTrue(both.getStatus().getDescription().contains("one of them"), both.toString());
  }

  @Test
  void secretsReachOnlyTheFunctionsThatNameThem() throws Exception {
    client.createSecret("db", Map.of("DB_PASSWORD", "hunter2"));
    deploy(fn("with-secret", "handlers:env").addSecrets("db").putEnv("PLAIN", "p"));
    deploy(fn("without-secret", "handlers:env"));
    assertEquals(
        "\"hunter2\"",
        client
            .call("test/with-secret", args("[\"DB_PASSWORD\"]"), null)
            .getOutputJson()
            .toStringUtf8());
    assertEquals(
        "\"p\"",
        client.call("test/with-secret", args("[\"PLAIN\"]"), null).getOutputJson().toStringUtf8());
    assertEquals(
        "null",
        client
            .call("test/without-secret", args("[\"DB_PASSWORD\"]"), null)
            .getOutputJson()
            .toStringUtf8());
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class, () -> deploy(fn("x", "handlers:env").addSecrets("nope")));
    assertTrue(e.getMessage().contains("no secret 'nope'"), e.getMessage());
  }

  @Test
  void aRedeployMakesANewVersionAndTheOldContainersDrain() throws Exception {
    deploy(fn("versions", "handlers:square"));
    assertEquals(
        "4", client.call("test/versions", args("[2]"), null).getOutputJson().toStringUtf8());
    // the same spec again is no new version
    assertEquals(1, deploy(fn("versions", "handlers:square")).getFunction().getVersion());
    DeployResponse v2 = deploy(fn("versions", "handlers:env"));
    assertEquals(2, v2.getFunction().getVersion());
    assertEquals(
        "null",
        client.call("test/versions", args("[\"NOPE\"]"), null).getOutputJson().toStringUtf8());
    await(
        "the first version's container to stop",
        () ->
            client.containers().stream()
                .noneMatch(c -> c.getFunctionId().equals("test/versions") && c.getVersion() == 1));
  }

  /** The function snapshots of this host whose names start with {@code prefix}. */
  private long snapshotsNamed(String prefix) throws IOException {
    Path root = tmp.resolve("home/snapshots");
    if (!Files.isDirectory(root)) {
      return 0;
    }
    try (var walk = Files.walk(root, 3)) {
      return walk.filter(p -> p.getFileName().toString().startsWith(prefix)).count();
    }
  }

  @Test
  void aLongLivedWorkerRemovesTheCodeAndSnapshotsNoContainerUses() throws Exception {
    Path v1 = Files.createDirectories(tmp.resolve("sweep-v1"));
    Files.writeString(v1.resolve("m.py"), "def f(x):\n    return 'one'\n");
    Path v2 = Files.createDirectories(tmp.resolve("sweep-v2"));
    Files.writeString(v2.resolve("m.py"), "def f(x):\n    return 'two'\n");
    Path bundle1 =
        tmp.resolve("worker/code")
            .resolve(CodeBundle.digest(CodeBundle.pack(v1)).substring("sha256:".length()));
    Path bundle2 =
        tmp.resolve("worker/code")
            .resolve(CodeBundle.digest(CodeBundle.pack(v2)).substring("sha256:".length()));
    FunctionSpec.Builder spec =
        fn("sweep", "m:f")
            .setSnapshot(true)
            .setAutoscaling(Autoscaling.newBuilder().setScaledownWindowMs(60_000));
    client.deploy(spec.build(), v1);
    assertEquals(
        "\"one\"", client.call("test/sweep", args("[1]"), null).getOutputJson().toStringUtf8());
    client.deploy(spec.build(), v2);
    assertEquals(
        "\"two\"", client.call("test/sweep", args("[1]"), null).getOutputJson().toStringUtf8());
    await(
        "version 1's container to stop",
        () ->
            client.containers().stream()
                .noneMatch(c -> c.getFunctionId().equals("test/sweep") && c.getVersion() == 1));
    assertTrue(Files.isDirectory(bundle1) && Files.isDirectory(bundle2));
    assertEquals(1, snapshotsNamed("fn.test.sweep.v1."));
    assertEquals(1, snapshotsNamed("fn.test.sweep.v2."));

    // Recently used: kept (a sweep on the worker's schedule removes only what a day did not use).
    platform.worker().sweep(java.time.Instant.now().minusSeconds(3600));
    assertTrue(Files.isDirectory(bundle1));
    assertEquals(1, snapshotsNamed("fn.test.sweep.v1."));

    // Unused since the cutoff: version 1's code and snapshot go; version 2's container holds its.
    assertTrue(platform.worker().sweep(java.time.Instant.now().plusSeconds(1)) >= 2);
    assertTrue(!Files.exists(bundle1), "version 1's code removed");
    assertEquals(0, snapshotsNamed("fn.test.sweep.v1."), "version 1's snapshot removed");
    assertTrue(Files.isDirectory(bundle2), "the running version's code kept");
    assertEquals(1, snapshotsNamed("fn.test.sweep.v2."), "the running version's snapshot kept");
    assertEquals(
        "\"two\"", client.call("test/sweep", args("[2]"), null).getOutputJson().toStringUtf8());

    // What was removed comes back when needed: version 1's code deployed again runs.
    client.deploy(spec.build(), v1);
    assertEquals(
        "\"one\"", client.call("test/sweep", args("[3]"), null).getOutputJson().toStringUtf8());
    assertTrue(Files.isDirectory(bundle1));
    deploy(fn("sweep", "handlers:square")); // no snapshot, no minimum: the rest can go
  }

  @Test
  void idleContainersScaleToZeroAfterTheWindow() throws Exception {
    deploy(
        fn("scale", "handlers:square")
            .setAutoscaling(Autoscaling.newBuilder().setScaledownWindowMs(1000)));
    assertEquals("1", client.call("test/scale", args("[1]"), null).getOutputJson().toStringUtf8());
    assertEquals(
        1,
        client.containers().stream().filter(c -> c.getFunctionId().equals("test/scale")).count());
    await(
        "scale to zero",
        () -> client.containers().stream().noneMatch(c -> c.getFunctionId().equals("test/scale")));
  }

  @Test
  void minContainersAreKeptWarm() throws Exception {
    deploy(
        fn("warm", "handlers:square")
            .setAutoscaling(
                Autoscaling.newBuilder().setMinContainers(2).setScaledownWindowMs(500)));
    await(
        "two warm containers",
        () ->
            client.containers().stream()
                    .filter(
                        c -> c.getFunctionId().equals("test/warm") && c.getState().equals("idle"))
                    .count()
                == 2);
    Thread.sleep(2000);
    assertEquals(
        2, client.containers().stream().filter(c -> c.getFunctionId().equals("test/warm")).count());
    deploy(fn("warm", "handlers:square")); // min 0 now
  }

  @Test
  void logsCanBeFollowedAsTheyCome() throws Exception {
    deploy(fn("follow", "handlers:square"));
    String id = client.spawn("test/follow", args("[11]"));
    List<LogLine> lines = new ArrayList<>();
    client.logs(null, id, true, lines::add); // ends with the call
    assertEquals(List.of("squaring 11"), lines.stream().map(LogLine::getLine).toList());
    assertEquals("test/follow", lines.get(0).getFunctionId());
  }
}
