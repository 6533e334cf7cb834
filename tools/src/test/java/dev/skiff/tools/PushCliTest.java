package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.LatencyProxy;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** skiff push when things go wrong: a failure is one line, and Ctrl-C leaves no upload open. */
class PushCliTest {
  @TempDir static Path tmp;

  static S3Server server;
  static String home;
  static final Map<String, String> AWS_ENV = S3Server.CLIENT_ENV;

  @BeforeAll
  static void setUp() throws IOException {
    server = new S3Server(tmp.resolve("s3"));
    System.setProperty("aws.accessKeyId", "test-key");
    System.setProperty("aws.secretAccessKey", "test-secret");
    System.setProperty("aws.region", "us-east-1");
    byte[] big = new byte[40 << 20]; // random: its pack is above the part threshold
    new SplittableRandom(12).nextBytes(big);
    Path tar = new Tars().file("big.bin", big, 0644).write(tmp.resolve("big.tar"));
    home = tmp.resolve("home").toString();
    Cli.run(0, "import", "-q", "--store", home, tar.toString(), "big:1");
  }

  @AfterAll
  static void tearDown() {
    if (server != null) {
      server.close();
    }
  }

  /** A push in its own JVM, logging as the shipped command does. */
  private static SkiffProcess push(String endpoint, String url) throws IOException {
    return new SkiffProcess(
        AWS_ENV, List.of(), "push", "-q", "--store", home, "--endpoint", endpoint, "big:1", url);
  }

  /** A proxy to the server at 8 MB/s: the 40 MiB pack takes about 5 s to go up through it. */
  private static LatencyProxy slowLink() throws InterruptedException {
    return LatencyProxy.start(
        new InetSocketAddress("127.0.0.1", server.port()), Duration.ofMillis(1), 8_000_000);
  }

  private static List<String> openUploads(String prefix) throws Exception {
    return server.openUploads().stream().filter(k -> k.startsWith(prefix + "/")).toList();
  }

  private static void awaitUploadStarted(String prefix, SkiffProcess p) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (openUploads(prefix).isEmpty()) {
      assertTrue(
          System.nanoTime() < deadline && p.process.isAlive(), "no upload started: " + p.err());
      Thread.sleep(20); // polling the server, not waiting for time to pass
    }
  }

  private static void assertOneLine(String err) {
    // Leaving out the JDK's own warnings, and SLF4J's note on the provider the test picks.
    List<String> lines =
        err.lines().filter(l -> !l.startsWith("WARNING: ") && !l.startsWith("SLF4J(")).toList();
    assertEquals(1, lines.size(), "one line:\n" + err);
    assertTrue(lines.get(0).startsWith("skiff push: "), err);
  }

  @Test
  void aFailedPushPrintsOneLine() throws Exception {
    int dead;
    try (ServerSocket s = new ServerSocket(0)) {
      dead = s.getLocalPort();
    }
    SkiffProcess refused = push("http://127.0.0.1:" + dead, "s3://skiff-test/refused");
    assertEquals(1, refused.exit());
    assertOneLine(refused.err());

    SkiffProcess noBucket = push(server.endpoint().toString(), "s3://no-such-bucket/x");
    assertEquals(1, noBucket.exit());
    assertOneLine(noBucket.err());
    assertTrue(noBucket.err().contains("no-such-bucket does not exist"), noBucket.err());

    // The link goes down while parts are on their way.
    SkiffProcess cut;
    try (LatencyProxy link = slowLink()) {
      cut = push("http://127.0.0.1:" + link.port(), "s3://skiff-test/cut");
      awaitUploadStarted("cut", cut);
    }
    assertEquals(1, cut.exit());
    assertOneLine(cut.err());
  }

  @Test
  void ctrlCDuringAPushAbortsItsUploadAndALaterPushCompletes() throws Exception {
    try (LatencyProxy link = slowLink()) {
      SkiffProcess p = push("http://127.0.0.1:" + link.port(), "s3://skiff-test/ctrl-c");
      awaitUploadStarted("ctrl-c", p);
      p.signal("INT");
      assertEquals(130, p.exit(), p.err());
    }
    assertEquals(List.of(), openUploads("ctrl-c"), "the upload was aborted on the way out");
    String out =
        Cli.run(
            0,
            "push",
            "--store",
            home,
            "--endpoint",
            server.endpoint().toString(),
            "big:1",
            "s3://skiff-test/ctrl-c");
    assertTrue(out.contains("pushed big:1"), out);
    assertEquals(List.of(), openUploads("ctrl-c"));
  }
}
