package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * skiff push, pull, mount s3://... and cache, as a user runs them, against a real S3 API server.
 */
@Tag("fuse")
class RemoteCliTest {
  @TempDir static Path tmp;

  static S3Server server;
  static byte[] data;
  static Map<String, String> awsEnv;

  @BeforeAll
  static void setUp() throws IOException {
    Environment.requireFuse();
    server = new S3Server(tmp.resolve("s3"));
    // The CLI takes credentials from the usual AWS places: system properties here, environment
    // variables for the mount processes.
    System.setProperty("aws.accessKeyId", "test-key");
    System.setProperty("aws.secretAccessKey", "test-secret");
    System.setProperty("aws.region", "us-east-1");
    awsEnv = S3Server.CLIENT_ENV;
    data = new byte[(2 << 20) + 17];
    new SplittableRandom(8).nextBytes(data);
  }

  @AfterAll
  static void tearDown() {
    if (server != null) {
      server.close();
    }
  }

  @Test
  void pushPullMountAndCache() throws Exception {
    String endpoint = server.endpoint().toString();
    String origin = tmp.resolve("origin").toString();
    String host = tmp.resolve("host").toString();
    Path tar =
        new Tars()
            .file("app/data.bin", data, 0644)
            .file("app/hello.txt", "hello from s3\n")
            .write(tmp.resolve("app.tar"));
    Cli.run(0, "import", "-q", "--store", origin, tar.toString(), "app:1");

    String out =
        Cli.run(
            0, "push", "--store", origin, "--endpoint", endpoint, "app:1", "s3://skiff-test/fleet");
    assertTrue(out.contains("pushed app:1") && out.contains("uploaded"), out);
    out =
        Cli.run(
            0,
            "push",
            "-q",
            "--store",
            origin,
            "--endpoint",
            endpoint,
            "app:1",
            "s3://skiff-test/fleet");
    assertTrue(out.contains("0 blobs uploaded"), out);

    out =
        Cli.run(0, "pull", "--store", host, "--endpoint", endpoint, "s3://skiff-test/fleet/app:1");
    assertTrue(out.contains("pulled app:1"), out);
    out =
        Cli.run(1, "pull", "--store", host, "--endpoint", endpoint, "s3://skiff-test/fleet/nope:1");
    assertTrue(out.contains("no image nope:1"), out);

    // A pulled image mounts by name; its chunks come from the bucket through the disk cache.
    Path mp = tmp.resolve("mnt");
    MountProcess m = new MountProcess(mp, awsEnv, "--store", host, "app:1");
    assertArrayEquals(data, Files.readAllBytes(mp.resolve("app/data.bin")));
    assertEquals("hello from s3\n", Files.readString(mp.resolve("app/hello.txt")));
    assertEquals(0, SkiffCli.execute("umount", mp.toString()));
    assertTrue(m.process.waitFor(30, TimeUnit.SECONDS));
    assertTrue(m.output().contains("from the store"), m.output());

    out = Cli.run(0, "cache", "stats", "--store", host);
    assertTrue(out.contains("3 chunks") || out.contains("2 chunks"), out);
    out = Cli.run(0, "cache", "gc", "--store", host, "--max", "0");
    assertTrue(out.contains("-> 0 B"), out);

    // Straight from the bucket, no pull first.
    Path mp2 = tmp.resolve("mnt2");
    MountProcess direct =
        new MountProcess(
            mp2,
            awsEnv,
            "--store",
            tmp.resolve("host2").toString(),
            "--endpoint",
            endpoint,
            "s3://skiff-test/fleet/app:1");
    assertArrayEquals(data, Files.readAllBytes(mp2.resolve("app/data.bin")));
    assertEquals(0, SkiffCli.execute("umount", mp2.toString()));
    assertTrue(direct.process.waitFor(30, TimeUnit.SECONDS));
  }

  @Test
  void everyCommandThatNamesAnImageTakesABucketImage() throws Exception {
    String endpoint = server.endpoint().toString();
    String origin = tmp.resolve("forms-origin").toString();
    String host = tmp.resolve("forms-host").toString();
    Path tar = new Tars().file("etc/hello", "hello\n").write(tmp.resolve("forms.tar"));
    Cli.run(0, "import", "-q", "--store", origin, tar.toString(), "forms:1");
    Cli.run(
        0, "push", "-q", "--store", origin, "--endpoint", endpoint, "forms:1", "s3://skiff-test/f");
    String url = "s3://skiff-test/f/forms:1";

    String out = Cli.run(0, "inspect", "--store", host, "--endpoint", endpoint, url);
    assertTrue(out.contains("image     forms:1") && out.contains("layers"), out);
    out = Cli.run(1, "trace", "show", "--store", host, "--endpoint", endpoint, url);
    assertTrue(out.contains("no trace for forms:1 yet"), "not 'bad image name': " + out);
    out = Cli.run(0, "snapshot", "ls", "--store", host, "--endpoint", endpoint, url);
    assertTrue(out.startsWith("NAME"), out);
    out = Cli.run(1, "snapshot", "rm", "--store", host, "--endpoint", endpoint, url, "none");
    assertTrue(out.contains("no snapshot 'none'"), out);
    out =
        Cli.run(1, "inspect", "--store", host, "--endpoint", endpoint, "s3://skiff-test/f/nope:1");
    assertTrue(out.contains("no image nope:1 in s3://skiff-test/f"), out);
    out = Cli.run(1, "inspect", "--store", host, "docker://x/y:1");
    assertTrue(out.contains("want NAME[:TAG], s3://"), out);
  }
}
