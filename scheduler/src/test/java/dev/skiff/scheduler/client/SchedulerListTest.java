package dev.skiff.scheduler.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.scheduler.control.SchedulerServer;
import dev.skiff.scheduler.proto.FunctionInfo;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.state.LmdbControlState;
import io.grpc.StatusRuntimeException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A client given a leader and its standby follows a takeover to the standby's address. */
class SchedulerListTest {
  @TempDir Path tmp;
  final String token = Tokens.generate();

  private SchedulerServer.Options at(int port) {
    return new SchedulerServer.Options(
        new InetSocketAddress("127.0.0.1", port), token, token, null, null);
  }

  private static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  @Test
  void aClientOfAListFollowsTheSchedulerToTheStandbysAddress() throws Exception {
    int standbyPort = freePort();
    LmdbControlState state = LmdbControlState.open(tmp.resolve("state"));
    SchedulerServer leader = SchedulerServer.start(state, at(0));
    String list = "127.0.0.1:" + leader.port() + ",127.0.0.1:" + standbyPort;
    try (ControlClient client = ControlClient.connect(list, token, null)) {
      client.deploy(
          FunctionSpec.newBuilder()
              .setApp("t")
              .setName("f")
              .setImage("py:1")
              .setLanguage("python")
              .setHandler("m:f")
              .build(),
          null);
      assertEquals(1, client.functions().size());
      leader.close();
      state.close();
      // the standby takes over the same state at its own address
      try (LmdbControlState again = LmdbControlState.open(tmp.resolve("state"));
          SchedulerServer standby = SchedulerServer.start(again, at(standbyPort))) {
        List<FunctionInfo> functions = null;
        for (int i = 0; i < 100 && functions == null; i++) {
          try {
            functions = client.functions();
          } catch (StatusRuntimeException e) {
            Thread.sleep(100); // the broken connection is noticed, then the list tried again
          }
        }
        assertTrue(functions != null, "the client reached the standby");
        assertEquals("t/f", functions.get(0).getFunction().getId());
      }
    }
  }

  @Test
  void aMalformedListIsRefusedWithWhatToWrite() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> ControlClient.channel("127.0.0.1:7420,standby", null));
    assertTrue(e.getMessage().contains("HOST:PORT,HOST:PORT"), e.getMessage());
  }
}
