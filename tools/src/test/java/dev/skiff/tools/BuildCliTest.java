package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.runtime.testing.HostRootfs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** skiff build as a user runs it: the steps stream, a rebuild is all cache, the image runs. */
@Timeout(300)
class BuildCliTest {
  @TempDir Path tmp;

  @Test
  void buildRebuildAndRun() throws Exception {
    Environment.requireRunsc();
    String home = tmp.resolve("home").toString();
    Path rootfs = HostRootfs.tools().build(tmp.resolve("rootfs"));
    Cli.run(0, "import", "-q", "--store", home, rootfs.toString(), "tools:1");
    Path ctx = Files.createDirectories(tmp.resolve("ctx"));
    Files.writeString(ctx.resolve("hello.txt"), "hello from the context\n");
    Files.writeString(
        ctx.resolve("Dockerfile"),
        """
        FROM tools:1
        COPY hello.txt /srv/
        RUN echo "step ran" && cat /srv/hello.txt > /srv/copy.txt
        CMD ["cat", "/srv/copy.txt"]
        """);
    SkiffProcess first =
        new SkiffProcess("build", "--store=" + home, "-t", "app:1", ctx.toString());
    assertEquals(0, first.exit(), first.err());
    assertTrue(first.out().contains("RUN echo \"step ran\""), first.out());
    assertTrue(first.out().contains("  | step ran"), "the step's output streams: " + first.out());
    assertTrue(first.out().contains("built app:1 (0 of 2 steps cached)"), first.out());
    SkiffProcess again =
        new SkiffProcess("build", "--store=" + home, "-t", "app:2", ctx.toString());
    assertEquals(0, again.exit(), again.err());
    assertTrue(again.out().contains("built app:2 (2 of 2 steps cached)"), again.out());
    assertTrue(!again.out().contains("  | step ran"), "nothing ran: " + again.out());
    SkiffProcess run = new SkiffProcess("run", "--store=" + home, "app:2");
    assertEquals(0, run.exit(), run.err());
    assertEquals("hello from the context\n", run.out());
  }

  @Test
  void anotherHostBuildsFromTheStepsInABucket() throws Exception {
    Environment.requireRunsc();
    Path rootfs = HostRootfs.tools().build(tmp.resolve("rootfs"));
    Path ctx = Files.createDirectories(tmp.resolve("ctx"));
    Files.writeString(ctx.resolve("Dockerfile"), "FROM tools:1\nRUN echo \"step ran\" > /ran\n");
    try (S3Server s3 = new S3Server(tmp.resolve("s3"))) {
      List<String> out = new ArrayList<>();
      for (String host : List.of("host-a", "host-b")) {
        String home = tmp.resolve(host).toString();
        Cli.run(0, "import", "-q", "--store", home, rootfs.toString(), "tools:1");
        SkiffProcess b =
            new SkiffProcess(
                S3Server.CLIENT_ENV,
                List.of(),
                "build",
                "--store=" + home,
                "--cache=s3://" + S3Server.BUCKET + "/build-cache",
                "--endpoint=" + s3.endpoint(),
                "-t",
                "app:1",
                ctx.toString());
        assertEquals(0, b.exit(), b.err());
        out.add(b.out());
      }
      assertTrue(out.get(0).contains("built app:1 (0 of 1 steps cached)"), out.get(0));
      assertTrue(out.get(1).contains("(cached in s3://skiff-test/build-cache)"), out.get(1));
      assertTrue(out.get(1).contains("built app:1 (1 of 1 steps cached)"), out.get(1));
      SkiffProcess run =
          new SkiffProcess("run", "--store=" + tmp.resolve("host-b"), "app:1", "--", "cat", "/ran");
      assertEquals(0, run.exit(), run.err());
      assertEquals("step ran\n", run.out());
    }
  }
}
