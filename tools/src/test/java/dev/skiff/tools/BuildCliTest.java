package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.Environment;
import dev.skiff.runtime.testing.HostRootfs;
import java.nio.file.Files;
import java.nio.file.Path;
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
}
