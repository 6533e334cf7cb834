package dev.skiff.scheduler.state;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.scheduler.proto.CallRecord;
import dev.skiff.scheduler.proto.Function;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.Status;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** The contract every {@link ControlState} keeps; each implementation's test extends this. */
public abstract class ControlStateContract {
  /** A fresh, empty state. */
  protected abstract ControlState fresh() throws IOException;

  /** The same state as {@code s} after closing it (what a restarted scheduler sees). */
  protected abstract ControlState reopen(ControlState s) throws IOException;

  private static FunctionSpec spec(String app, String name, String handler) {
    return FunctionSpec.newBuilder()
        .setApp(app)
        .setName(name)
        .setImage("py:1")
        .setLanguage("python")
        .setHandler(handler)
        .build();
  }

  private static List<String> ids(List<CallRecord> records) {
    return records.stream().map(CallRecord::getCallId).toList();
  }

  private static Input input(int x) {
    return dev.skiff.scheduler.client.ControlClient.input("[" + x + "]", "");
  }

  @Test
  void deployingMakesVersionsAndTheLatestIsFound() throws Exception {
    try (ControlState s = fresh()) {
      Function v1 = s.deploy(spec("app", "sq", "h:sq"), 1000);
      Function v2 = s.deploy(spec("app", "sq", "h:sq2"), 2000);
      s.deploy(spec("app", "other", "h:o"), 3000);
      assertEquals(1, v1.getVersion());
      assertEquals(2, v2.getVersion());
      assertEquals("app/sq", v2.getId());
      assertEquals("h:sq2", s.latest("app/sq").orElseThrow().getSpec().getHandler());
      assertEquals("h:sq", s.function("app/sq", 1).orElseThrow().getSpec().getHandler());
      assertTrue(s.latest("app/none").isEmpty());
      assertTrue(s.function("app/sq", 3).isEmpty());
      List<Function> all = s.functions();
      assertEquals(
          List.of("app/other", "app/sq"), all.stream().map(Function::getId).sorted().toList());
      assertEquals(
          2,
          all.stream()
              .filter(f -> f.getId().equals("app/sq"))
              .findFirst()
              .orElseThrow()
              .getVersion());
    }
  }

  @Test
  void acceptedInputsAreKeptInOrderAndSurviveARestart() throws Exception {
    ControlState s = fresh();
    Function f = s.deploy(spec("app", "sq", "h:sq"), 1000);
    List<String> ids = ids(s.accept(f, List.of(input(1), input(2), input(3)), 5000));
    assertEquals(3, new HashSet<>(ids).size());
    s = reopen(s);
    try (ControlState again = s) {
      List<CallRecord> pending = again.unfinished();
      assertEquals(ids, pending.stream().map(CallRecord::getCallId).toList());
      CallRecord first = again.call(ids.get(0)).orElseThrow();
      assertEquals(Status.PENDING, first.getStatus());
      assertEquals("[1]", first.getInput().getArgsJson().toStringUtf8());
      assertEquals("app/sq", first.getFunctionId());
      assertEquals(1, first.getVersion());
      assertEquals(ids.reversed(), again.recent(10).stream().map(CallRecord::getCallId).toList());
      assertTrue(again.call("call-none").isEmpty());
    }
  }

  @Test
  void finishedCallsLeaveTheUnfinishedAndKeepTheirResults() throws Exception {
    ControlState s = fresh();
    Function f = s.deploy(spec("app", "sq", "h:sq"), 1000);
    List<String> ids = ids(s.accept(f, List.of(input(1), input(2)), 5000));
    CallRecord running =
        s.call(ids.get(0)).orElseThrow().toBuilder()
            .setStatus(Status.RUNNING)
            .setAttempts(1)
            .build();
    s.update(running);
    assertEquals(2, s.unfinished().size());
    Result ok =
        Result.newBuilder()
            .setCallId(ids.get(0))
            .setStatus(Status.SUCCESS)
            .setOutputJson(com.google.protobuf.ByteString.copyFromUtf8("1"))
            .build();
    s.update(ControlState.finish(running, ok, 6000));
    s = reopen(s);
    try (ControlState again = s) {
      assertEquals(
          List.of(ids.get(1)), again.unfinished().stream().map(CallRecord::getCallId).toList());
      CallRecord done = again.call(ids.get(0)).orElseThrow();
      assertEquals(Status.SUCCESS, done.getStatus());
      assertEquals("1", done.getResult().getOutputJson().toStringUtf8());
      assertEquals(1, done.getAttempts());
      assertThrows(
          IOException.class,
          () -> again.update(CallRecord.newBuilder().setCallId("call-none").build()));
    }
  }

  @Test
  void callsThatFinishedLongEnoughAgoAreForgottenAndUnfinishedOnesNever() throws Exception {
    try (ControlState s = fresh()) {
      Function f = s.deploy(spec("app", "sq", "h:sq"), 1000);
      List<String> old = ids(s.accept(f, List.of(input(1), input(2), input(3)), 5000));
      List<String> recent = ids(s.accept(f, List.of(input(4)), 9000));
      for (String id : List.of(old.get(0), old.get(2))) {
        CallRecord r = s.call(id).orElseThrow();
        s.update(
            ControlState.finish(
                r,
                Result.newBuilder().setCallId(id).setStatus(Status.SUCCESS).build(),
                id.equals(old.get(0)) ? 6000 : 9500));
      }
      CallRecord last = s.call(recent.get(0)).orElseThrow();
      s.update(
          ControlState.finish(
              last,
              Result.newBuilder().setCallId(last.getCallId()).setStatus(Status.SUCCESS).build(),
              9600));
      // before 9000: only old[0] finished by then (old[2] finished at 9500, old[1] never)
      assertEquals(1, s.forgetFinished(9000, 100));
      assertTrue(s.call(old.get(0)).isEmpty());
      assertTrue(s.call(old.get(1)).isPresent());
      assertTrue(s.call(old.get(2)).isPresent());
      assertEquals(0, s.forgetFinished(9000, 100), "nothing more to forget");
      assertEquals(2, s.forgetFinished(10_000, 1) + s.forgetFinished(10_000, 1), "in batches");
      assertEquals(
          List.of(old.get(1)), s.unfinished().stream().map(CallRecord::getCallId).toList());
      assertEquals(List.of(old.get(1)), s.recent(10).stream().map(CallRecord::getCallId).toList());
      // a call accepted after all that is still numbered after the unfinished one
      String next = ids(s.accept(f, List.of(input(5)), 11_000)).get(0);
      assertEquals(next, s.recent(1).get(0).getCallId());
    }
  }

  @Test
  void concurrentAcceptsLoseNothing() throws Exception {
    try (ControlState s = fresh()) {
      Function f = s.deploy(spec("app", "sq", "h:sq"), 1000);
      ExecutorService pool = Executors.newFixedThreadPool(4);
      List<Future<List<String>>> batches = new ArrayList<>();
      for (int t = 0; t < 8; t++) {
        List<Input> inputs = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
          inputs.add(input(i));
        }
        batches.add(pool.submit(() -> ids(s.accept(f, inputs, 7000))));
      }
      Set<String> all = Collections.synchronizedSet(new HashSet<>());
      for (Future<List<String>> b : batches) {
        all.addAll(b.get());
      }
      pool.shutdown();
      assertEquals(400, all.size());
      assertEquals(400, s.unfinished().size());
    }
  }

  @Test
  void aBatchOfUpdatesIsAllOrNothing() throws Exception {
    try (ControlState s = fresh()) {
      Function f = s.deploy(spec("app", "sq", "h:sq"), 1000);
      List<String> ids = ids(s.accept(f, List.of(input(1), input(2)), 5000));
      Result ok =
          Result.newBuilder()
              .setStatus(Status.SUCCESS)
              .setOutputJson(com.google.protobuf.ByteString.copyFromUtf8("1"))
              .build();
      CallRecord done = ControlState.finish(s.call(ids.get(0)).orElseThrow(), ok, 6000);
      assertThrows(
          IOException.class,
          () -> s.update(List.of(done, CallRecord.newBuilder().setCallId("call-none").build())));
      assertEquals(Status.PENDING, s.call(ids.get(0)).orElseThrow().getStatus());
      s.update(List.of(done, ControlState.finish(s.call(ids.get(1)).orElseThrow(), ok, 6000)));
      assertTrue(s.unfinished().isEmpty());
    }
  }

  @Test
  void blobsKnowWhenTheyWereLastStoredOrAskedForAndGoWhenRemoved() throws Exception {
    ControlState s = fresh();
    s.putBlob("sha256:old", new byte[] {1}, 1_000);
    s.putBlob("sha256:asked", new byte[] {2}, 1_000);
    s.putBlob("sha256:again", new byte[] {3}, 1_000);
    s.putBlob("sha256:again", new byte[] {3}, 5_000); // stored again: its time is the new one
    s.touchBlobs(List.of("sha256:asked", "sha256:none"), 6_000);
    s.putBlob("sha256:new", new byte[] {4}, 9_000);
    s = reopen(s);
    try (ControlState again = s) {
      assertEquals(List.of("sha256:old"), again.blobsStoredBefore(2_000));
      assertEquals(
          java.util.Set.of("sha256:old", "sha256:again", "sha256:asked"),
          new java.util.HashSet<>(again.blobsStoredBefore(8_000)));
      // one stored again after the listing stays
      assertEquals(0, again.removeBlobs(List.of("sha256:again"), 2_000));
      assertEquals(
          2, again.removeBlobs(List.of("sha256:old", "sha256:asked", "sha256:none"), 8_000));
      assertFalse(again.hasBlob("sha256:old"));
      assertTrue(again.blob("sha256:asked").isEmpty());
      assertTrue(again.hasBlob("sha256:again") && again.hasBlob("sha256:new"));
      assertEquals(List.of("sha256:again"), again.blobsStoredBefore(8_000));
    }
  }

  @Test
  void blobsAndSecretsAreKept() throws Exception {
    ControlState s = fresh();
    byte[] zip = {1, 2, 3, 0, 4};
    s.putBlob("sha256:ab", zip);
    s.putBlob("sha256:ab", zip);
    s.putSecret("db", java.util.Map.of("USER", "u", "PASSWORD", "p w"));
    s.putSecret("api", java.util.Map.of("KEY", "k"));
    s.putSecret("api", java.util.Map.of("KEY", "k2"));
    s = reopen(s);
    try (ControlState again = s) {
      assertTrue(java.util.Arrays.equals(zip, again.blob("sha256:ab").orElseThrow()));
      assertTrue(again.blob("sha256:cd").isEmpty());
      assertTrue(again.hasBlob("sha256:ab"));
      assertFalse(again.hasBlob("sha256:cd"));
      assertEquals(
          java.util.Map.of("USER", "u", "PASSWORD", "p w"), again.secret("db").orElseThrow());
      assertEquals(java.util.Map.of("KEY", "k2"), again.secret("api").orElseThrow());
      assertTrue(again.secret("none").isEmpty());
      assertEquals(List.of("api", "db"), again.secrets());
    }
  }
}
