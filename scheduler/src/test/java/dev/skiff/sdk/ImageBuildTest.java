package dev.skiff.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.scheduler.LocalPlatform;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.Status;
import dev.skiff.scheduler.state.LmdbControlState;
import dev.skiff.scheduler.testing.PipIndex;
import dev.skiff.scheduler.worker.Worker;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * An image defined in Java ({@code Image.debianSlim().aptInstall(...).pipInstall(...)...}) is built
 * through the scheduler on a worker, from a Debian base made with debootstrap from this host's apt
 * mirror and Python packages from a local index, and a function then runs on it. A second client's
 * build of the same steps runs none; a changed last step reruns only that one; a failing step says
 * why. Needs root, gVisor, debootstrap and the Debian mirror.
 */
@Timeout(1200)
class ImageBuildTest {
  @TempDir Path tmp;

  @Test
  void anImageDefinedInJavaIsBuiltOnAWorkerCachedStepByStepAndRunsFunctions() throws Exception {
    Environment.requireDebootstrap();
    Path data = Files.createDirectories(tmp.resolve("data/sub"));
    Files.writeString(tmp.resolve("data/hello.txt"), "from the caller's disk");
    Files.writeString(data.resolve("deep.txt"), "deeper");
    Path code = Files.createDirectories(tmp.resolve("code"));
    Files.writeString(
        code.resolve("check.py"),
        """
        import os, subprocess, skiffdemo
        def run(x):
            return {
                "hi": open("/etc/hi").read().strip(),
                "k": os.environ["K"],
                "data": open("/data/hello.txt").read(),
                "deep": open("/data/sub/deep.txt").read(),
                "cwd": os.getcwd(),
                "skiffdemo": skiffdemo.VERSION,
                "jq": subprocess.run(["jq", "--version"], capture_output=True, text=True).stdout.strip(),
            }
        """);
    try (S3Server bucket = new S3Server(tmp.resolve("s3"));
        dev.skiff.casfs.store.BlobStore cacheClient =
            bucket.store(
                "build-cache", tmp.resolve("s3-scratch"), java.time.Duration.ofSeconds(60));
        Host host = Host.start(tmp.resolve("host1"), "w1", buildCache(bucket, cacheClient));
        PipIndex index = PipIndex.start(Map.of("skiffdemo", "1.0"))) {
      ImageStore store = host.store();
      LocalPlatform platform = host.platform();
      Image image =
          Image.debianSlim("3.11")
              .aptInstall("jq")
              .pipInstall(List.of("skiffdemo==1.0"), index.url())
              .runCommands("echo hi > /etc/hi")
              .env("K", "V with \"quotes\", $HOME, \\ and ${X}")
              .addLocalDir(tmp.resolve("data"), "/data")
              .workdir("/app");
      assertTrue(image.dockerfile().startsWith("FROM debootstrap://bookworm"), image.dockerfile());
      String name;
      try (SkiffClient client =
          SkiffClient.connect(platform.target(), platform.clientToken(), null)) {
        name = client.build(image);
        assertTrue(name.startsWith("skiff-image:"), name);
        assertEquals(name, client.build(image), "built once per client");
      }
      assertEquals(1, index.downloads());

      // A Python function on the built image sees every step.
      try (ControlClient control = platform.client()) {
        control.deploy(
            FunctionSpec.newBuilder()
                .setApp("built")
                .setName("check")
                .setImage(name)
                .setLanguage("python")
                .setHandler("check:run")
                .build(),
            code);
        Result r = control.call("built/check", ControlClient.input("[1]", ""), null);
        assertEquals(Status.SUCCESS, r.getStatus(), r.toString());
        JsonNode out =
            new ObjectMapper().readTree(r.getOutputJson().toString(StandardCharsets.UTF_8));
        assertEquals("hi", out.path("hi").asText());
        assertEquals("V with \"quotes\", $HOME, \\ and ${X}", out.path("k").asText());
        assertEquals("from the caller's disk", out.path("data").asText());
        assertEquals("deeper", out.path("deep").asText());
        assertEquals("/app", out.path("cwd").asText());
        assertEquals("1.0", out.path("skiffdemo").asText());
        assertTrue(out.path("jq").asText().startsWith("jq-"), out.toString());
      }

      // Another client (another program run): the same steps, the same image, no step run again.
      try (SkiffClient other =
          SkiffClient.connect(platform.target(), platform.clientToken(), null)) {
        long t0 = System.nanoTime();
        assertEquals(name, other.build(image));
        System.err.printf("rebuild with nothing changed: %.2f s%n", (System.nanoTime() - t0) / 1e9);
        assertEquals(1, index.downloads(), "pip did not run again");

        // A changed last step reruns that step only (pip's step stays cached).
        String moved = other.build(image.workdir("/srv"));
        assertNotEquals(name, moved);
        assertEquals(1, index.downloads());

        // A failing step fails the build with its exit and output.
        IllegalStateException e =
            assertThrows(
                IllegalStateException.class,
                () -> other.build(Image.debianSlim().runCommands("echo broken >&2; exit 3")));
        assertTrue(e.getMessage().contains("exit") && e.getMessage().contains("3"), e.getMessage());
      }

      // A worker on another host (a store of its own) that shares the bucket: no debootstrap, no
      // step run again (apt and pip would make other files), the same image fetched.
      try (Host host2 = Host.start(tmp.resolve("host2"), "w2", buildCache(bucket, cacheClient));
          SkiffClient client2 =
              SkiffClient.connect(
                  host2.platform().target(), host2.platform().clientToken(), null)) {
        assertEquals(name, client2.build(image));
        dev.skiff.api.ImageRef built = dev.skiff.api.ImageRef.parse(name);
        assertEquals(
            store.resolve(built), host2.store().resolve(built), "the same image, not rebuilt");
        assertEquals(1, index.downloads(), "pip did not run on the second host");
      }
    }
  }

  /** A host: a store of its own, a runtime, and a platform whose worker shares {@code cache}. */
  private record Host(
      ImageStore store, SandboxRuntime rt, LmdbControlState state, LocalPlatform platform)
      implements AutoCloseable {
    static Host start(
        Path dir, String worker, dev.skiff.runtime.build.ImageBuilder.SharedCache cache)
        throws Exception {
      ImageStore store = ImageStore.open(dir.resolve("home"));
      SandboxRuntime rt = null;
      LmdbControlState state = null;
      try {
        rt = SandboxRuntime.open(store, SandboxRuntime.Config.defaults());
        state = LmdbControlState.open(dir.resolve("state"));
        Worker.Options options =
            new Worker.Options(
                    worker, 2, 8L << 30, List.of(), dir.resolve("worker"), "/usr/bin/python3", 4)
                .withBuildCache(cache);
        return new Host(store, rt, state, LocalPlatform.start(store, rt, state, options));
      } catch (Exception | Error e) {
        new Host(store, rt, state, null).close();
        throw e;
      }
    }

    @Override
    public void close() throws Exception {
      for (AutoCloseable c : new AutoCloseable[] {platform, state, rt, store}) {
        if (c != null) {
          c.close();
        }
      }
    }
  }

  /** The bucket's build cache, through one client for both hosts' workers. */
  private static dev.skiff.runtime.build.ImageBuilder.SharedCache buildCache(
      S3Server bucket, dev.skiff.casfs.store.BlobStore client) {
    return new dev.skiff.runtime.build.ImageBuilder.SharedCache(
        client, bucket.location("build-cache"));
  }

  @Test
  void stepsAreCheckedWhereTheyAreWritten() {
    assertThrows(IllegalArgumentException.class, () -> Image.debianSlim("2.7"));
    assertThrows(IllegalArgumentException.class, () -> Image.debianSlim().aptInstall("curl; rm"));
    assertThrows(IllegalArgumentException.class, () -> Image.debianSlim().pipInstall("x'; rm"));
    assertThrows(IllegalArgumentException.class, () -> Image.debianSlim().env("1K", "v"));
    assertThrows(IllegalArgumentException.class, () -> Image.debianSlim().workdir("relative"));
    assertThrows(
        IllegalArgumentException.class,
        () -> Image.debianSlim().addLocalDir(tmp.resolve("none"), "/data"));
    assertThrows(IllegalArgumentException.class, () -> Image.fromRegistry("python:3.11"));
    assertThrows(IllegalStateException.class, () -> Image.debianSlim().spec());
    assertEquals(
        "FROM docker://127.0.0.1:5000/library/python:3.11\nRUN echo hi\n",
        Image.fromRegistry("docker://127.0.0.1:5000/library/python:3.11")
            .runCommands("echo hi")
            .dockerfile());
    assertEquals("FROM py:1\nWORKDIR /app\n", Image.of("py:1").workdir("/app").dockerfile());
  }
}
