package dev.skiff.scheduler.control;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.scheduler.proto.Assignment;
import dev.skiff.scheduler.proto.Autoscaling;
import dev.skiff.scheduler.proto.ContainerStarted;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.Hello;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.InputDone;
import dev.skiff.scheduler.proto.Resources;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.RunInput;
import dev.skiff.scheduler.proto.Status;
import dev.skiff.scheduler.proto.WorkerMessage;
import dev.skiff.scheduler.state.LmdbControlState;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.time.InstantSource;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Placement without sandboxes: workers are fakes attached to the scheduler's stream that say what a
 * worker says (hello, started, done), so where each container and call goes can be read off.
 */
class SchedulerPlacementTest {
  @TempDir Path tmp;

  LmdbControlState state;
  ScheduledExecutorService timers;
  Scheduler scheduler;

  /** A worker as the scheduler sees it: what it was told, and a way to answer. */
  final class FakeWorker {
    final String id;
    final List<Assignment> got = new CopyOnWriteArrayList<>();
    final StreamObserver<WorkerMessage> up;

    FakeWorker(String id, double cpus, long memory, List<String> gpus, List<String> images) {
      this.id = id;
      this.up =
          scheduler.attach(
              new StreamObserver<>() {
                @Override
                public void onNext(Assignment a) {
                  got.add(a);
                }

                @Override
                public void onError(Throwable t) {}

                @Override
                public void onCompleted() {}
              });
      up.onNext(
          WorkerMessage.newBuilder()
              .setHello(
                  Hello.newBuilder()
                      .setWorkerId(id)
                      .setCpus(cpus)
                      .setMemoryBytes(memory)
                      .addAllGpus(gpus)
                      .addAllImages(images))
              .build());
    }

    List<Assignment> starts() {
      return got.stream().filter(Assignment::hasStart).toList();
    }

    List<Assignment> stops() {
      return got.stream().filter(Assignment::hasStop).toList();
    }

    /** The calls this worker was given, whether one by one or in batches. */
    List<RunInput> runs() {
      return got.stream()
          .flatMap(
              a ->
                  a.hasRun()
                      ? java.util.stream.Stream.of(a.getRun())
                      : a.getRunBatch().getRunList().stream())
          .toList();
    }

    void started(Assignment start) {
      up.onNext(
          WorkerMessage.newBuilder()
              .setStarted(
                  ContainerStarted.newBuilder().setContainerId(start.getStart().getContainerId()))
              .build());
    }

    void done(RunInput run, String output) {
      done(run, output, 500_000);
    }

    /** Container {@code id} ended by itself. */
    void exited(String id) {
      up.onNext(
          WorkerMessage.newBuilder()
              .setExited(
                  dev.skiff.scheduler.proto.ContainerExited.newBuilder()
                      .setContainerId(id)
                      .setWhy("its process exited"))
              .build());
    }

    /** The worker process died: its stream breaks. */
    void crash() {
      up.onError(new RuntimeException("connection reset"));
    }

    /** The call ended with {@code output} after the handler ran {@code micros}. */
    void done(RunInput run, String output, long micros) {
      up.onNext(
          WorkerMessage.newBuilder()
              .setDone(
                  InputDone.newBuilder()
                      .setContainerId(run.getContainerId())
                      .setResult(
                          Result.newBuilder()
                              .setCallId(run.getCallId())
                              .setStatus(Status.SUCCESS)
                              .setOutputJson(com.google.protobuf.ByteString.copyFromUtf8(output))
                              .setDurationUs(micros)))
              .build());
    }
  }

  @BeforeEach
  void setUp() throws Exception {
    state = LmdbControlState.open(tmp.resolve("state"));
    timers = Executors.newSingleThreadScheduledExecutor();
    scheduler = new Scheduler(state, InstantSource.system(), timers);
  }

  @AfterEach
  void tearDown() throws Exception {
    scheduler.close();
    timers.shutdownNow();
    state.close();
  }

  private static FunctionSpec.Builder fn(String name) {
    return FunctionSpec.newBuilder()
        .setApp("t")
        .setName(name)
        .setImage("py:1")
        .setLanguage("python")
        .setHandler("h:f");
  }

  private static Input input() {
    return dev.skiff.scheduler.client.ControlClient.input("[1]", "");
  }

  private static <T> T await(
      String what, java.util.function.Supplier<List<T>> list, Predicate<List<T>> ok)
      throws InterruptedException {
    for (int i = 0; i < 100; i++) {
      List<T> l = list.get();
      if (ok.test(l)) {
        return l.isEmpty() ? null : l.get(l.size() - 1);
      }
      Thread.sleep(20);
    }
    throw new AssertionError("timed out waiting for " + what + ": " + list.get());
  }

  @Test
  void gpuRequestsAreTriedInRankOrder() throws Exception {
    FakeWorker a100 = new FakeWorker("a", 8, 0, List.of("A100-80GB"), List.of());
    FakeWorker h100 = new FakeWorker("h", 8, 0, List.of("H100"), List.of());
    scheduler.deploy(
        fn("gpu").setResources(Resources.newBuilder().addGpu("H100").addGpu("A100-80GB")).build(),
        new byte[0]);
    scheduler.submit("t/gpu", List.of(input()));
    Assignment first = await("a start on the H100 worker", h100::starts, l -> l.size() == 1);
    assertEquals(List.of(0), first.getStart().getGpuIndexesList());
    assertTrue(a100.starts().isEmpty(), "the first rank fits, so the fallback is not used");
    scheduler.submit("t/gpu", List.of(input())); // the H100 is taken: the fallback
    await("a start on the A100 worker", a100::starts, l -> l.size() == 1);
    scheduler.submit("t/gpu", List.of(input())); // neither has a GPU free: it waits, and says so
    Thread.sleep(200);
    assertEquals(1, h100.starts().size());
    assertEquals(1, a100.starts().size());
    String why =
        scheduler.functions().stream()
            .filter(f -> f.getFunction().getId().equals("t/gpu"))
            .findFirst()
            .orElseThrow()
            .getWaiting();
    assertTrue(why.contains("every worker that could run it is full"), why);
  }

  private List<Integer> gpusUsed(String worker) {
    return scheduler.workers().stream()
        .filter(w -> w.getId().equals(worker))
        .findFirst()
        .map(w -> w.getGpusUsedList())
        .orElse(List.of());
  }

  @Test
  void aGpuIsOneContainersUntilItEndsAndNothingIsLeftHeldByADeadWorker() throws Exception {
    FakeWorker w = new FakeWorker("w", 8, 0, List.of("H100", "H100"), List.of());
    scheduler.deploy(
        fn("gpu").setResources(Resources.newBuilder().addGpu("H100")).build(), new byte[0]);
    scheduler.submit("t/gpu", List.of(input()));
    Assignment first = await("a first container", w::starts, l -> l.size() == 1);
    w.started(first);
    await("the first call", w::runs, l -> l.size() == 1);
    scheduler.submit("t/gpu", List.of(input())); // the first container is busy
    Assignment second = await("a second container", w::starts, l -> l.size() == 2);
    assertEquals(List.of(0), first.getStart().getGpuIndexesList());
    assertEquals(List.of(1), second.getStart().getGpuIndexesList(), "not the first one's GPU");
    assertEquals(List.of(0, 1), gpusUsed("w"));
    w.started(second);
    await("the second call", w::runs, l -> l.size() == 2);

    scheduler.submit("t/gpu", List.of(input())); // both GPUs are held: it waits
    Thread.sleep(200);
    assertEquals(2, w.starts().size());
    // The first container ends: its GPU goes to the waiting call's container.
    w.exited(first.getStart().getContainerId());
    Assignment third = await("a third container", w::starts, l -> l.size() == 3);
    assertEquals(List.of(0), third.getStart().getGpuIndexesList());

    // The worker dies with both GPUs held; it comes back (same host, same GPUs): every GPU is
    // free to give again, each to one container.
    w.crash();
    await("the dead worker gone", () -> gpusUsed("w"), List::isEmpty);
    FakeWorker back = new FakeWorker("w", 8, 0, List.of("H100", "H100"), List.of());
    // The calls the dead containers held are run again, and two more come.
    scheduler.submit("t/gpu", List.of(input(), input()));
    await("containers on the returned worker", back::starts, l -> l.size() >= 2);
    Thread.sleep(200);
    List<Assignment> starts = back.starts();
    assertEquals(2, starts.size(), "no more containers than GPUs");
    assertEquals(
        java.util.Set.of(0, 1),
        new java.util.HashSet<>(starts.stream().map(a -> a.getStart().getGpuIndexes(0)).toList()),
        "two containers, two GPUs: none leaked, none given twice");
    assertEquals(List.of(0, 1), gpusUsed("w"));
  }

  @Test
  void whatNoWorkerCanEverRunIsSaidAtDeploy() throws Exception {
    new FakeWorker("small", 1, 1L << 30, List.of(), List.of());
    String warning =
        scheduler
            .deploy(fn("big").setResources(Resources.newBuilder().setCpus(4)).build(), new byte[0])
            .getWarning();
    assertTrue(warning.contains("no worker attached has 4.00 CPUs"), warning);
    warning =
        scheduler
            .deploy(
                fn("huge").setResources(Resources.newBuilder().setMemoryBytes(2L << 30)).build(),
                new byte[0])
            .getWarning();
    assertTrue(warning.contains("bytes of memory"), warning);
  }

  @Test
  void aHostWithTheImageComesFirstThenTheLeastLoaded() throws Exception {
    FakeWorker busy = new FakeWorker("busy", 2, 0, List.of(), List.of());
    FakeWorker cached = new FakeWorker("cached", 2, 0, List.of(), List.of("py:1"));
    scheduler.deploy(fn("img").build(), new byte[0]);
    scheduler.submit("t/img", List.of(input()));
    await("a start where the image is", cached::starts, l -> l.size() == 1);
    assertTrue(busy.starts().isEmpty());

    scheduler.deploy(fn("other").setImage("other:1").build(), new byte[0]);
    scheduler.submit("t/other", List.of(input()));
    await("a start on the least loaded worker", busy::starts, l -> l.size() == 1);
  }

  @Test
  void anImageBuiltOnAWorkerRunsOnlyWhereItIsThoughOthersAreFree() throws Exception {
    String built = Scheduler.BUILT_IMAGE + "0123456789abcdef0123";
    FakeWorker holder = new FakeWorker("holder", 1, 0, List.of(), List.of(built));
    FakeWorker idle = new FakeWorker("idle", 8, 0, List.of(), List.of());
    scheduler.deploy(
        fn("built").setImage(built).setResources(Resources.newBuilder().setCpus(1)).build(),
        new byte[0]);
    scheduler.submit("t/built", List.of(input()));
    Assignment first = await("a start where the image is", holder::starts, l -> l.size() == 1);
    holder.started(first);
    // the holder is full (1 CPU, 1 container); another call waits for it, never goes to idle
    scheduler.submit("t/built", List.of(input()));
    Thread.sleep(500);
    assertTrue(idle.starts().isEmpty(), "the other worker does not have the built image");
  }

  @Test
  void aWarmContainerTakesTheNextCallAndALostWorkersCallRunsElsewhereOnce() throws Exception {
    FakeWorker one = new FakeWorker("one", 2, 0, List.of(), List.of("py:1"));
    scheduler.deploy(fn("warm").build(), new byte[0]);
    String first = scheduler.submit("t/warm", List.of(input())).get(0);
    Assignment start = await("a start", one::starts, l -> l.size() == 1);
    one.started(start);
    RunInput run = await("the call", one::runs, l -> l.size() == 1);
    one.done(run, "1");
    assertEquals(
        "1", scheduler.result(first).get(5, TimeUnit.SECONDS).getOutputJson().toStringUtf8());

    String second = scheduler.submit("t/warm", List.of(input())).get(0);
    await("the next call on the warm container", one::runs, l -> l.size() == 2);
    assertEquals(1, one.starts().size(), "no new container for a warm one's call");

    FakeWorker two = new FakeWorker("two", 2, 0, List.of(), List.of());
    one.up.onError(new RuntimeException("killed")); // the worker's stream breaks mid-call
    Assignment elsewhere = await("a start on the other worker", two::starts, l -> l.size() == 1);
    two.started(elsewhere);
    RunInput again = await("the call again", two::runs, l -> l.size() == 1);
    assertEquals(second, again.getCallId());
    two.done(again, "2");
    Result r = scheduler.result(second).get(5, TimeUnit.SECONDS);
    assertEquals("2", r.getOutputJson().toStringUtf8());
    assertEquals(1, r.getAttempts(), "the lost attempt does not count");
    one.done(one.runs().get(1), "stale"); // a late answer from the lost worker changes nothing
    assertEquals("2", scheduler.peek(second).getOutputJson().toStringUtf8());
  }

  @Test
  void shortCallsGetNoMoreContainersThanTheWorkersCoresWhateverAFirstCallCost() throws Exception {
    FakeWorker w = new FakeWorker("w", 2, 0, List.of(), List.of("py:1"));
    scheduler.deploy(fn("short").build(), new byte[0]);
    scheduler.submit("t/short", List.of(input()));
    Assignment start = await("a start", w::starts, l -> !l.isEmpty());
    w.started(start);
    // A container's first call pays its warm-up (a JVM loading the handler): 50 ms; then 0.1 ms.
    w.done(await("the first call", w::runs, l -> l.size() == 1), "1", 50_000);
    scheduler.submit("t/short", List.of(input()));
    w.done(await("the second call", w::runs, l -> l.size() == 2), "2", 100);
    assertEquals(1, w.starts().size());
    scheduler.submit("t/short", java.util.Collections.nCopies(20_000, input()));
    Thread.sleep(1_500); // autoscaler rounds
    assertEquals(
        2,
        w.starts().size(),
        "short calls on a 2-core worker: 2 containers, not the 20 a 50 ms call would ask for");
  }

  @Test
  void aContainerThatNeverRanACallStopsOnceUnwantedAndOneThatRanWaitsForItsWindow()
      throws Exception {
    FakeWorker w = new FakeWorker("w", 4, 0, List.of(), List.of("py:1"));
    scheduler.deploy(
        fn("burst").setAutoscaling(Autoscaling.newBuilder().setScaledownWindowMs(60_000)).build(),
        new byte[0]);
    scheduler.submit("t/burst", List.of(input(), input()));
    await("two starts for two calls", w::starts, l -> l.size() == 2);
    Assignment used = w.starts().get(0);
    Assignment unused = w.starts().get(1);
    w.started(used);
    w.done(await("the first call", w::runs, l -> l.size() == 1), "1");
    w.done(await("the second call, on the same container", w::runs, l -> l.size() == 2), "2");
    w.started(unused); // ready once the backlog is gone
    Assignment stop = await("the unused container stopped", w::stops, l -> l.size() == 1);
    assertEquals(unused.getStart().getContainerId(), stop.getStop().getContainerId());
    Thread.sleep(1_500); // more autoscaler rounds
    assertEquals(1, w.stops().size(), "the container that ran calls waits for its window");
  }

  @Test
  void aRestartedSchedulerQueuesWhatItHadAccepted() throws Exception {
    scheduler.deploy(fn("later").build(), new byte[0]);
    List<String> ids = scheduler.submit("t/later", List.of(input(), input()));
    scheduler.close();
    scheduler = new Scheduler(state, InstantSource.system(), timers);
    FakeWorker w = new FakeWorker("w", 2, 0, List.of(), List.of());
    await("two starts after the restart", w::starts, l -> l.size() == 2);
    w.starts().forEach(w::started);
    await("both calls", w::runs, l -> l.size() == 2);
    for (RunInput run : w.runs()) {
      w.done(run, "\"ok\"");
    }
    for (String id : ids) {
      assertEquals(Status.SUCCESS, scheduler.result(id).get(5, TimeUnit.SECONDS).getStatus());
    }
  }
}
