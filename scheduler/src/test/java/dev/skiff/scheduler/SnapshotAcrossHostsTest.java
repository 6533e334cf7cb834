package dev.skiff.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.Remotes;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.Snapshot;
import dev.skiff.runtime.testing.HostRootfs;
import dev.skiff.scheduler.runner.Outcome;
import dev.skiff.scheduler.runner.PythonRunner;
import dev.skiff.scheduler.worker.FunctionContainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A function's memory snapshot taken on one host and restored on another through the image's
 * bucket, as a worker does it: host A takes it after the handler's import, host B (another home,
 * its runner and the function's code at other paths, the image never pulled) finds it by name,
 * fetches it and serves calls from it, reading its own copies of the runner and the code.
 */
@Timeout(240)
class SnapshotAcrossHostsTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  @Test
  void aSnapshotTakenOnOneHostServesCallsOnAnotherThroughTheBucket() throws Exception {
    Environment.requireRunsc();
    ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor();
    try (S3Server server = new S3Server(tmp.resolve("s3"))) {
      try (ImageStore origin = ImageStore.open(tmp.resolve("origin"));
          BlobStore bucket =
              server.store("fleet", tmp.resolve("scratch"), Duration.ofSeconds(30))) {
        Path rootfs = HostRootfs.python().build(tmp.resolve("rootfs"));
        origin.importImage(rootfs.toString(), ImageRef.parse("py:1"), ImportProgress.NONE);
        origin.push(ImageRef.parse("py:1"), bucket, ImageStore.PushProgress.NONE);
      }
      Remotes remotes = S3Server.remotes(server.endpoint(), Duration.ofSeconds(20), 2);
      ImageSpec image = ImageSpec.parse("s3://" + S3Server.BUCKET + "/fleet/py:1");
      List<String> logs = new CopyOnWriteArrayList<>();
      String name = "fn.demo.square.v1.0123456789ab";

      // Host A: the handler's module says where it was imported; the snapshot keeps that.
      Path codeA = Files.createDirectories(tmp.resolve("host-a/code"));
      Files.writeString(codeA.resolve("handlers.py"), handler("host-a"));
      try (ImageStore store = ImageStore.open(tmp.resolve("host-a/home"));
          SandboxRuntime rt =
              SandboxRuntime.open(store, SandboxRuntime.Config.defaults().withRemotes(remotes))) {
        Path runner = PythonRunner.install(tmp.resolve("host-a/runner"));
        FunctionContainer.startAndSnapshot(
            rt, spec(image, codeA), runner, timers, (c, call, line) -> logs.add(line), name);
      }

      // Host B: nothing but the bucket, and its own copies of the runner and the code.
      Path codeB = Files.createDirectories(tmp.resolve("host-b/code"));
      Files.writeString(codeB.resolve("handlers.py"), handler("host-b"));
      Path runnerB = PythonRunner.install(tmp.resolve("host-b/runner"));
      // Host A's copies are gone: a restore that still read them would fail.
      deleteTree(tmp.resolve("host-a/code"));
      deleteTree(tmp.resolve("host-a/runner"));
      try (ImageStore store = ImageStore.open(tmp.resolve("host-b/home"));
          SandboxRuntime rt =
              SandboxRuntime.open(store, SandboxRuntime.Config.defaults().withRemotes(remotes))) {
        Snapshot snap = rt.snapshots().find(image, name);
        for (int round = 0; round < 2; round++) {
          try (FunctionContainer c =
              FunctionContainer.restore(
                  rt,
                  snap,
                  spec(image, codeB),
                  runnerB,
                  timers,
                  (x, call, line) -> logs.add(line))) {
            Outcome o =
                c.call(
                        "call-" + round,
                        JSON.readTree("[" + (3 + round) + "]"),
                        null,
                        Duration.ofSeconds(30))
                    .get();
            var out = assertInstanceOf(Outcome.Success.class, o, o.toString()).output();
            assertEquals((3 + round) * (3 + round), out.path("square").asInt(), out.toString());
            // The import ran once, on host A, before the snapshot: host B did not import again.
            assertEquals("host-a", out.path("imported_on").asText(), out.toString());
          }
        }
      }
    } finally {
      timers.shutdownNow();
    }
  }

  private static String handler(String host) {
    return "HOST = '"
        + host
        + "'\n"
        + "def square(x):\n"
        + "    return {'square': x * x, 'imported_on': HOST}\n";
  }

  private static FunctionContainer.Spec spec(ImageSpec image, Path code) {
    return FunctionContainer.Spec.python(
        image, "/usr/bin/python3", "handlers:square", code, 1, SandboxOptions.defaults());
  }

  private static void deleteTree(Path p) throws java.io.IOException {
    try (var files = Files.walk(p)) {
      for (Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(f);
      }
    }
  }
}
