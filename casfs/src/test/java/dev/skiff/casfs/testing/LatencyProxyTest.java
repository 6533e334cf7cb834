package dev.skiff.casfs.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.S3Location;
import java.io.ByteArrayInputStream;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The proxy adds the delay and the cap it promises, and delivers every byte intact. */
class LatencyProxyTest {
  @TempDir Path tmp;

  @Test
  void addsRoundTripsAndCapsBandwidthWithoutChangingBytes() throws Exception {
    byte[] data = new byte[4 << 20];
    new SplittableRandom(2).nextBytes(data);
    try (S3Server server = new S3Server(tmp.resolve("s3"));
        LatencyProxy proxy =
            LatencyProxy.start(
                new InetSocketAddress("127.0.0.1", server.port()),
                Duration.ofMillis(25),
                20_000_000)) {
      S3Location via =
          new S3Location(
              S3Server.BUCKET,
              "p",
              java.net.URI.create("http://127.0.0.1:" + proxy.port()),
              "us-east-1",
              true);
      try (BlobStore direct = server.store("p", tmp, Duration.ofSeconds(30));
          BlobStore slow =
              BlobStores.s3(via, tmp, S3Server.credentials(), Duration.ofSeconds(30), 1)) {
        direct.put("packs/x/data", new ByteArrayInputStream(data));
        slow.readFully("packs/x/data", 0, 10); // opens the connection
        long t0 = System.nanoTime();
        slow.readFully("packs/x/data", 0, 10);
        double rtt = (System.nanoTime() - t0) / 1e6;
        assertTrue(rtt >= 50, "a small GET takes at least one RTT (50 ms), took " + rtt);
        t0 = System.nanoTime();
        assertArrayEquals(data, slow.readFully("packs/x/data", 0, data.length).array());
        for (int i = 0; i < 5; i++) {
          assertArrayEquals(
              data,
              slow.readFully("packs/x/data", 0, data.length).array(),
              "bytes arrive in order");
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        assertTrue(secs >= 1.2, "6 x 4 MiB at 20 MB/s takes at least 1.2 s, took " + secs);
      }
    }
  }
}
