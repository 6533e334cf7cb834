package dev.skiff.scheduler.state;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.scheduler.testing.PostgresServer;
import java.io.IOException;
import java.nio.file.Path;
import java.sql.SQLException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The contract against a real PostgreSQL server, plus what only it does: a standby's takeover. */
class PostgresControlStateTest extends ControlStateContract {
  @TempDir static Path tmp;

  static PostgresServer server;

  private String url;

  @BeforeAll
  static void startServer() throws Exception {
    server = PostgresServer.start(tmp);
  }

  @AfterAll
  static void stopServer() throws IOException {
    if (server != null) {
      server.close();
    }
  }

  @Override
  protected ControlState fresh() throws IOException {
    try {
      url = server.newDatabase();
    } catch (SQLException e) {
      throw new IOException(e);
    }
    return PostgresControlState.open(url);
  }

  @Override
  protected ControlState reopen(ControlState s) throws IOException {
    s.close();
    return PostgresControlState.open(url);
  }

  @Test
  void aStandbyTakesTheLeadWhenTheLeaderGoes() throws Exception {
    try (PostgresControlState leader = (PostgresControlState) fresh();
        PostgresControlState standby = PostgresControlState.open(url)) {
      leader.awaitLeadership();
      CompletableFuture<Void> takeover =
          CompletableFuture.runAsync(
              () -> {
                try {
                  standby.awaitLeadership();
                } catch (IOException e) {
                  throw new java.io.UncheckedIOException(e);
                }
              });
      Thread.sleep(500);
      assertFalse(takeover.isDone(), "the standby waits while the leader lives");
      leader.close();
      takeover.get(10, TimeUnit.SECONDS);
      assertTrue(takeover.isDone());
      assertEquals(0, standby.unfinished().size());
    }
  }
}
