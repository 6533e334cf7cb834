package dev.skiff.scheduler.control;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.skiff.scheduler.proto.LogLine;
import dev.skiff.scheduler.testing.PostgresServer;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Log lines and payloads in the state's database: what one scheduler kept, the next one reads. */
class PostgresSharedDataTest {
  @TempDir static Path tmp;
  static PostgresServer server;

  @BeforeAll
  static void startServer() throws Exception {
    server = PostgresServer.start(tmp);
  }

  @AfterAll
  static void stopServer() throws Exception {
    if (server != null) {
      server.close();
    }
  }

  private static LogLine line(String fn, String call, String text) {
    return LogLine.newBuilder().setFunctionId(fn).setCallId(call).setLine(text).build();
  }

  private static List<String> texts(List<LogLine> lines) {
    return lines.stream().map(LogLine::getLine).toList();
  }

  @Test
  void linesOutliveTheSchedulerAndAreFoundByFunctionAndByCall() throws Exception {
    String url = server.newDatabase();
    PostgresLogStore s = new PostgresLogStore(url);
    s.append(line("app/a", "call-1", "one"));
    s.append(line("app/b", "call-2", "other"));
    s.append(line("app/a", "call-3", "two"));
    s.flush();
    s.append(line("app/a", "call-1", "three"));
    s.close(); // flushes
    PostgresLogStore again = new PostgresLogStore(url);
    try {
      assertEquals(List.of("one", "two", "three"), texts(again.read("app/a", "", 10)));
      assertEquals(List.of("two", "three"), texts(again.read("app/a", "", 2)), "the latest");
      assertEquals(List.of("one", "three"), texts(again.read("app/a", "call-1", 10)));
      assertEquals(List.of("other"), texts(again.read("app/b", "", 10)));
      assertEquals(List.of(), again.read("app/none", "", 10));
      // unflushed lines are read too: a read flushes first
      again.append(line("app/b", "call-2", "late"));
      assertEquals(List.of("other", "late"), texts(again.read("app/b", "", 10)));
    } finally {
      again.close();
    }
  }

  @Test
  void aFunctionKeepsItsLatestLinesOnly() throws Exception {
    String url = server.newDatabase();
    PostgresLogStore s = new PostgresLogStore(url, 100);
    try {
      for (int i = 0; i < 1000; i++) {
        s.append(line("app/noisy", "", "line " + i));
        if (i % 50 == 49) {
          s.flush();
        }
      }
      s.append(line("app/quiet", "", "kept"));
      s.flush();
      List<String> kept = texts(s.read("app/noisy", "", 10_000));
      assertEquals(
          IntStream.range(1000 - kept.size(), 1000).mapToObj(i -> "line " + i).toList(),
          kept,
          "the newest, in order");
      assertEquals(true, kept.size() >= 100 && kept.size() <= 110, kept.size() + " lines kept");
      assertEquals(List.of("kept"), texts(s.read("app/quiet", "", 10)));
    } finally {
      s.close();
    }
  }

  @Test
  void payloadsInTheDatabaseAreWholeSharedAndSwept() throws Exception {
    String url = server.newDatabase();
    byte[] data = new byte[(3 << 20) + 5];
    new java.util.Random(1).nextBytes(data);
    PayloadStore leader = new PayloadStore(tmp.resolve("a"), new PostgresPayloads(url));
    PayloadStoreTest.Heard<dev.skiff.scheduler.proto.PayloadRef> ref =
        new PayloadStoreTest.Heard<>();
    var up = leader.put(ref);
    up.onNext(
        dev.skiff.scheduler.proto.PayloadChunk.newBuilder()
            .setData(com.google.protobuf.ByteString.copyFrom(data))
            .build());
    up.onCompleted();
    String name = ref.values.get(0).getName();
    leader.close();
    try (var files = java.nio.file.Files.list(tmp.resolve("a"))) {
      assertEquals(0, files.count(), "no upload left behind");
    }
    PayloadStore standby = new PayloadStore(tmp.resolve("b"), new PostgresPayloads(url));
    try {
      assertEquals(true, standby.exists(name));
      PayloadStoreTest.Heard<dev.skiff.scheduler.proto.PayloadChunk> down =
          new PayloadStoreTest.Heard<>();
      standby.get(dev.skiff.scheduler.proto.PayloadRef.newBuilder().setName(name).build(), down);
      assertEquals(true, down.completed);
      assertEquals(4, down.values.size(), "1 MiB chunks");
      java.io.ByteArrayOutputStream back = new java.io.ByteArrayOutputStream();
      for (var c : down.values) {
        c.getData().writeTo(back);
      }
      org.junit.jupiter.api.Assertions.assertArrayEquals(data, back.toByteArray());
      assertEquals(0, standby.sweep(java.time.Instant.now()), "kept a day");
      assertEquals(
          1, standby.sweep(java.time.Instant.now().plus(PayloadStore.KEEP).plusSeconds(60)));
      assertEquals(false, standby.exists(name));
    } finally {
      standby.close();
    }
  }
}
