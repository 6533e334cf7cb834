package dev.skiff.casfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.S3Location;
import dev.skiff.casfs.testing.LatencyProxy;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A push of a blob large enough to go up in parts, interrupted part way. */
class InterruptedPushTest {
  @TempDir static Path tmp;

  static S3Server server;
  static ImageStore origin;

  @BeforeAll
  static void setUp() throws IOException {
    server = new S3Server(tmp.resolve("s3"));
    byte[] big =
        new byte[40 << 20]; // random, so it stays this size in its pack: above the part threshold
    new SplittableRandom(13).nextBytes(big);
    Path image = new Tars().file("big.bin", big, 0644).write(tmp.resolve("image.tar"));
    origin = ImageStore.open(tmp.resolve("origin"));
    origin.importImage(image.toString(), ImageRef.parse("big:1"), ImportProgress.NONE);
  }

  @AfterAll
  static void tearDown() throws IOException {
    if (origin != null) {
      origin.close();
    }
    if (server != null) {
      server.close();
    }
  }

  @Test
  void anInterruptedPushLeavesNoUploadOpenAndALaterPushCompletes() throws Exception {
    String prefix = "interrupted";
    // 8 MB/s: the 40 MiB pack takes about 5 s to go up.
    try (LatencyProxy slow =
            LatencyProxy.start(
                new InetSocketAddress("127.0.0.1", server.port()),
                Duration.ofMillis(1),
                8_000_000);
        BlobStore remote =
            BlobStores.s3(
                new S3Location(
                    S3Server.BUCKET,
                    prefix,
                    URI.create("http://127.0.0.1:" + slow.port()),
                    "us-east-1",
                    true),
                tmp.resolve("scratch"),
                S3Server.credentials(),
                Duration.ofSeconds(30),
                3)) {
      AtomicReference<Throwable> failure = new AtomicReference<>();
      Thread pusher =
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      origin.push(ImageRef.parse("big:1"), remote, ImageStore.PushProgress.NONE);
                    } catch (Throwable t) {
                      failure.set(t);
                    }
                  });
      // Parts are on their way as soon as the upload is open.
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (server.openUploads().isEmpty()) {
        assertTrue(
            System.nanoTime() < deadline && pusher.isAlive(),
            "no multipart upload started: " + failure.get());
        Thread.sleep(20); // polling the server, not waiting for time to pass
      }
      pusher.interrupt();
      pusher.join(30_000);
      assertTrue(!pusher.isAlive(), "the push ended when interrupted");
      assertInstanceOf(InterruptedIOException.class, failure.get());
      assertEquals(List.of(), server.openUploads(), "the interrupted upload was aborted");
      assertTrue(remote.list("refs/").isEmpty(), "no tag");
    }
    try (BlobStore remote = server.store(prefix, tmp.resolve("scratch"), Duration.ofSeconds(30))) {
      ImageStore.PushResult r =
          origin.push(ImageRef.parse("big:1"), remote, ImageStore.PushProgress.NONE);
      assertTrue(r.uploaded() >= 1, "the pack goes up whole this time");
      assertEquals(List.of("refs/big/1"), remote.list("refs/"));
      assertEquals(List.of(), server.openUploads());
    }
  }
}
