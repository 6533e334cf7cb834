package dev.skiff.scheduler.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.skiff.scheduler.control.SchedulerServer;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.state.PostgresControlState;
import dev.skiff.scheduler.testing.PostgresServer;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A standby scheduler on the same PostgreSQL database, with a data directory of its own, serves the
 * large payloads its predecessor took: they live in the database, not on the leader's disk.
 */
class StandbyDataTest {
  @TempDir static Path tmp;
  static PostgresServer server;
  final String token = Tokens.generate();

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

  private SchedulerServer.Options on(Path data) {
    return new SchedulerServer.Options(
        new InetSocketAddress("127.0.0.1", 0), token, token, null, null, data);
  }

  @Test
  void aStandbyServesThePayloadsItsLeaderTook() throws Exception {
    String url = server.newDatabase();
    // a 3 MiB JSON argument list: over the inline limit, so it travels as a payload
    StringBuilder json = new StringBuilder("[\"");
    java.util.Random r = new java.util.Random(7);
    while (json.length() < (3 << 20)) {
      json.append((char) ('a' + r.nextInt(26)));
    }
    json.append("\"]");
    Input big = Input.newBuilder().setArgsJson(ByteString.copyFromUtf8(json.toString())).build();
    String name;
    try (PostgresControlState state = PostgresControlState.open(url);
        SchedulerServer leader = SchedulerServer.start(state, on(tmp.resolve("leader")));
        ControlClient client = ControlClient.connect("127.0.0.1:" + leader.port(), token, null)) {
      name = client.prepare(big).getPayload();
      assertTrue(name.startsWith("sha256:"), name);
    }
    try (var files = Files.walk(tmp.resolve("leader"))) {
      assertEquals(0, files.filter(Files::isRegularFile).count(), "nothing on the leader's disk");
    }
    try (PostgresControlState state = PostgresControlState.open(url);
        SchedulerServer standby = SchedulerServer.start(state, on(tmp.resolve("standby")));
        ControlClient client = ControlClient.connect("127.0.0.1:" + standby.port(), token, null)) {
      Result back = client.resolve(Result.newBuilder().setOutputPayload(name).build());
      String doc = back.getOutputJson().toString(StandardCharsets.UTF_8);
      assertTrue(doc.contains(json.toString()), "the standby served the whole payload");
      assertArrayEquals(
          java.security.MessageDigest.getInstance("SHA-256")
              .digest(back.getOutputJson().toByteArray()),
          java.util.HexFormat.of().parseHex(name.substring("sha256:".length())));
    }
  }
}
