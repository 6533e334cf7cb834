package dev.skiff.casfs.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.FakeClock;
import dev.skiff.casfs.testing.S3Server;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The blob store contract against a real S3 API server, plus what only a remote store can do. */
class S3BlobStoreTest extends BlobStoreContract {
  @TempDir static Path tmp;

  static S3Server server;

  @BeforeAll
  static void startServer() throws IOException {
    server = new S3Server(tmp.resolve("s3"));
  }

  @AfterAll
  static void stopServer() {
    if (server != null) {
      server.close();
    }
  }

  @Override
  protected BlobStore newStore() {
    return server.store(
        "contract-" + UUID.randomUUID(), tmp.resolve("scratch"), Duration.ofSeconds(30));
  }

  @Test
  void largeBlobsGoUpInPartsAndComeBackByRange() throws IOException {
    byte[] big = new byte[40 << 20];
    new SplittableRandom(3).nextBytes(big);
    Path f = Files.write(tmp.resolve("big.bin"), big);
    store.putFile("packs/x/big", f);
    assertEquals(Optional.of((long) big.length), store.size("packs/x/big"));
    ByteBuffer mid = store.readFully("packs/x/big", 25_000_000, 1 << 20);
    byte[] want = new byte[1 << 20];
    System.arraycopy(big, 25_000_000, want, 0, want.length);
    assertArrayEquals(want, mid.array());
  }

  @Test
  void aDeadStoreFailsWithinItsTimeoutThenAtOnceAndWorksAgainWhenItComesBack() throws IOException {
    FakeClock clock = new FakeClock();
    try (BlobStore quick =
        server.store(
            "dead-" + UUID.randomUUID(), tmp.resolve("scratch"), Duration.ofSeconds(3), clock)) {
      quick.put("refs/a/b", new java.io.ByteArrayInputStream(new byte[] {1, 2, 3}));
      server.stop();
      try {
        long t0 = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> quick.readFully("refs/a/b", 0, 3));
        double secs = (System.nanoTime() - t0) / 1e9;
        assertTrue(secs < 15, "failed after " + secs + " s, bounded by the call timeout");
        assertTrue(e.getMessage().contains("refs/a/b"), e.getMessage());
        StoreUnavailableException fast =
            assertThrows(StoreUnavailableException.class, () -> quick.size("refs/a/c"));
        assertTrue(
            fast.getMessage().contains(server.location("").url())
                && fast.getMessage().contains("refs/a/b"),
            "names the store and the last error: " + fast.getMessage());
      } finally {
        server.start();
      }
      assertThrows(
          StoreUnavailableException.class,
          () -> quick.readFully("refs/a/b", 0, 3),
          "nothing tries before the cool-down");
      clock.advance(Duration.ofSeconds(6));
      assertArrayEquals(
          new byte[] {1, 2, 3}, quick.readFully("refs/a/b", 0, 3).array(), "recovers by itself");
      assertEquals(Optional.empty(), quick.size("refs/a/c"));
    }
  }
}
