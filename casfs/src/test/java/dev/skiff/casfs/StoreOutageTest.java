package dev.skiff.casfs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.fuse.FuseMount;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.FakeClock;
import dev.skiff.casfs.testing.HungServer;
import dev.skiff.casfs.testing.Reads;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A store that hangs (accepts connections, never answers) or refuses connections: a read fails
 * within the store timeout, not a multiple of it, the reads after it fail fast while the store
 * stays down, and reads work again by themselves once it is back.
 */
class StoreOutageTest {
  private static final Duration TIMEOUT = Duration.ofSeconds(3);
  private static final String PREFIX = "outage";

  @TempDir static Path tmp;

  static S3Server server;
  static ImageStore host;
  static byte[][] small = new byte[200][];

  @BeforeAll
  static void setUp() throws IOException {
    server = new S3Server(tmp.resolve("s3"));
    SplittableRandom rnd = new SplittableRandom(5);
    Tars t = new Tars().dir("lib", 0755);
    for (int i = 0; i < small.length; i++) {
      small[i] = new byte[5000 + rnd.nextInt(4000)];
      rnd.nextBytes(small[i]);
      t.file(String.format("lib/m%03d.py", i), small[i], 0644);
    }
    Path image = t.write(tmp.resolve("image.tar"));
    try (ImageStore origin = ImageStore.open(tmp.resolve("origin"));
        BlobStore remote = server.store(PREFIX, tmp.resolve("scratch"), Duration.ofSeconds(30))) {
      origin.importImage(image.toString(), ImageRef.parse("app:1"), ImportProgress.NONE);
      origin.push(ImageRef.parse("app:1"), remote, ImageStore.PushProgress.NONE);
      host = ImageStore.open(tmp.resolve("host"));
      host.pull(remote, server.location(PREFIX), ImageRef.parse("app:1"));
    }
  }

  @AfterAll
  static void tearDown() throws IOException {
    if (host != null) {
      host.close();
    }
    if (server != null) {
      server.close();
    }
  }

  private static double secondsSince(long t0) {
    return (System.nanoTime() - t0) / 1e9;
  }

  @Test
  void aHungStoreFailsAReadWithinItsTimeoutThenFailsFastAndRecoversWhenItIsBack()
      throws IOException {
    FakeClock clock = new FakeClock();
    try (BlobStore remote = server.store(PREFIX, tmp.resolve("scratch"), TIMEOUT, clock);
        ImageIndex index = host.openIndex(ImageRef.parse("app:1"))) {
      // A window read: the pack's chunk list and the chunk are both needed.
      ImageFileSystem fs =
          new ImageFileSystem(
              index, new ChunkReader(remote, 64 << 20, null, Runnable::run, 1 << 20, clock));
      server.stop();
      double first;
      double second;
      IOException fast;
      try (HungServer hung = HungServer.on(server.port())) {
        long t0 = System.nanoTime();
        assertThrows(IOException.class, () -> Reads.readAll(fs, "lib/m000.py"));
        first = secondsSince(t0);
        long t1 = System.nanoTime();
        fast = assertThrows(IOException.class, () -> Reads.readAll(fs, "lib/m150.py"));
        second = secondsSince(t1);
      } finally {
        server.start();
      }
      System.out.printf(
          "hung store, %s timeout: first read failed after %.2f s, the next after %.2f s%n",
          TIMEOUT, first, second);
      assertTrue(first < 1.6 * TIMEOUT.toSeconds(), "first read failed after " + first + " s");
      assertTrue(second < 1.0, "the next read failed after " + second + " s, not at once");
      assertTrue(fast.getMessage().contains(server.location(PREFIX).url()), fast.getMessage());

      clock.advance(Duration.ofMinutes(1));
      assertArrayEquals(small[0], Reads.readAll(fs, "lib/m000.py"), "works again by itself");
      assertArrayEquals(small[150], Reads.readAll(fs, "lib/m150.py"));
    }
  }

  @Test
  void aStoreThatRefusesConnectionsFailsReadsWithinTheTimeoutThenAtOnce() throws IOException {
    // A port held by a socket that is bound but never listens: nothing else can bind it while the
    // test runs (a free port found earlier could be taken by another process, which might then
    // accept and never answer). A connection to it is refused, usually at once (0.2-0.6 s for
    // the first read here); but under load a connect to it was seen to go unanswered until the
    // call's bound (in CI, and once here in a full run), so the promise tested is the README's:
    // the first read fails within the store timeout, the next ones at once.
    try (java.net.Socket holder = new java.net.Socket()) {
      holder.setReuseAddress(false);
      holder.bind(new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0));
      readsFailWithin(holder.getLocalPort(), 1.6 * TIMEOUT.toSeconds());
    }
  }

  private void readsFailWithin(int port, double bound) throws IOException {
    var nowhere =
        new dev.skiff.casfs.store.S3Location(
            S3Server.BUCKET, PREFIX, URI.create("http://127.0.0.1:" + port), "us-east-1", true);
    try (BlobStore remote =
            BlobStores.s3(nowhere, tmp.resolve("scratch"), S3Server.credentials(), TIMEOUT, 4);
        ImageIndex index = host.openIndex(ImageRef.parse("app:1"))) {
      ImageFileSystem fs =
          new ImageFileSystem(
              index, new ChunkReader(remote, 64 << 20, null, Runnable::run, 1 << 20));
      for (int i = 0; i < 3; i++) {
        long t0 = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> Reads.readAll(fs, "lib/m010.py"));
        double secs = secondsSince(t0);
        System.out.printf("refused connections: read %d failed after %.2f s%n", i, secs);
        assertTrue(
            secs < (i == 0 ? bound : 1.0), "read " + i + " failed after " + secs + " s: " + e);
      }
    }
  }

  @Test
  @Tag("fuse")
  void catOfAFileOnAHungStoreFailsWithEioWithinTheTimeout() throws Exception {
    Environment.requireFuse();
    Path mp = Files.createDirectories(tmp.resolve("mnt"));
    try (BlobStore remote = server.store(PREFIX, tmp.resolve("scratch"), TIMEOUT);
        ImageIndex index = host.openIndex(ImageRef.parse("app:1"))) {
      ImageFileSystem fs =
          new ImageFileSystem(
              index, new ChunkReader(remote, 64 << 20, null, Runnable::run, 1 << 20));
      server.stop();
      double secs;
      String err;
      int exit;
      try (HungServer hung = HungServer.on(server.port());
          FuseMount m = FuseMount.mount(mp, fs, FuseMount.Options.defaults())) {
        long t0 = System.nanoTime();
        Process cat =
            new ProcessBuilder("cat", mp.resolve("lib/m042.py").toString())
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        assertTrue(cat.waitFor(10 * TIMEOUT.toSeconds(), TimeUnit.SECONDS), "cat still running");
        secs = secondsSince(t0);
        exit = cat.exitValue();
        err = new String(cat.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
      } finally {
        server.start();
      }
      System.out.printf(
          "hung store, %s timeout: cat failed after %.2f s: %s%n", TIMEOUT, secs, err.strip());
      assertEquals(1, exit);
      assertTrue(err.contains("Input/output error"), err);
      assertTrue(secs < 1.6 * TIMEOUT.toSeconds(), "cat failed after " + secs + " s");
    }
  }
}
