package dev.skiff.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.gpu.DriverFiles;
import dev.skiff.gpu.Gpu;
import dev.skiff.gpu.GpuClaims;
import dev.skiff.gpu.GpuHost;
import dev.skiff.gpu.GpuInventory;
import dev.skiff.gpu.GpuSandbox;
import dev.skiff.gpu.testing.FakeGpuHost;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.testing.HostRootfs;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.proto.ContainerInfo;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.Resources;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.Status;
import dev.skiff.scheduler.proto.WorkerInfo;
import dev.skiff.scheduler.state.LmdbControlState;
import dev.skiff.scheduler.worker.Worker;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A worker whose GPUs are read off a driver, on a host made to look like one with two H100s (a fake
 * nvidia-smi, device nodes made with mknod, the driver's libraries) whose driver runsc's nvproxy
 * does not know, and whose operator lets GPU containers run under runc: a function that asks for an
 * H100 gets a container with exactly that GPU's device nodes, the driver's files and its
 * environment; the worker reports what the GPU does, per container; the GPU is claimed on the host
 * while the container runs and free again once it stops.
 */
@Timeout(300)
class GpuWorkerTest {
  @TempDir Path tmp;

  static final String DRIVER = "999.1.2";

  private static void await(String what, BooleanSupplier ok) throws InterruptedException {
    for (int i = 0; i < 300; i++) {
      if (ok.getAsBoolean()) {
        return;
      }
      Thread.sleep(100);
    }
    throw new AssertionError("timed out waiting for " + what);
  }

  @Test
  void aGpuFunctionGetsItsGpuUnderRuncAndTheWorkerReportsWhatItDoes() throws Exception {
    Environment.requireRunsc();
    Assumptions.assumeTrue(
        Files.isExecutable(Path.of("/usr/sbin/runc"))
            || Files.isExecutable(Path.of("/usr/bin/runc")),
        "needs runc (Debian package runc)");
    FakeGpuHost fake =
        FakeGpuHost.create(
            tmp.resolve("gpu-host"),
            DRIVER,
            List.of(
                new FakeGpuHost.Card(
                    "NVIDIA H100 80GB HBM3",
                    "GPU-aaaaaaaa-0000-0000-0000-000000000000",
                    81559,
                    10240,
                    42),
                FakeGpuHost.h100('b')));
    Path root = fake.root;
    GpuInventory inventory = fake.inventory();
    GpuHost host = inventory.read();
    assertEquals(List.of("H100", "H100"), host.offered());

    Path home = tmp.resolve("home");
    try (ImageStore store = ImageStore.open(home)) {
      Path rootfs = HostRootfs.python().build(tmp.resolve("rootfs"));
      store.importImage(rootfs.toString(), ImageRef.parse("py:1"), ImportProgress.NONE);
      try (SandboxRuntime rt = SandboxRuntime.open(store, SandboxRuntime.Config.defaults());
          LmdbControlState state = LmdbControlState.open(tmp.resolve("state"))) {
        GpuSandbox gpus =
            new GpuSandbox(
                host,
                DriverFiles.under(root),
                home.resolve("gpus"),
                rt.gpuDrivers(),
                true,
                inventory);
        Worker.Options options =
            new Worker.Options(
                "gpu-host",
                2,
                8L << 30,
                host.offered(),
                tmp.resolve("worker"),
                "/usr/bin/python3",
                2,
                gpus);
        try (LocalPlatform platform = LocalPlatform.start(store, rt, state, options);
            ControlClient client = platform.client()) {
          WorkerInfo w = client.workers().get(0);
          assertTrue(w.getGpusWithoutGvisor(), "the worker says its GPU containers run under runc");
          Path code = Files.createDirectories(tmp.resolve("code"));
          Files.writeString(
              code.resolve("probe.py"),
              """
              import os
              def probe(_):
                  return {
                      "nodes": sorted(n for n in os.listdir("/dev") if n.startswith("nvidia")),
                      "nvidia": os.environ.get("NVIDIA_VISIBLE_DEVICES"),
                      "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                      "libs": sorted(os.listdir("/usr/local/nvidia/lib64")),
                      "ld": os.environ.get("LD_LIBRARY_PATH"),
                  }
              """);
          client.deploy(
              FunctionSpec.newBuilder()
                  .setApp("gpu")
                  .setName("probe")
                  .setImage("py:1")
                  .setLanguage("python")
                  .setHandler("probe:probe")
                  .setResources(Resources.newBuilder().addGpu("H100"))
                  .build(),
              code);
          Result r =
              client.call("gpu/probe", ControlClient.input("[null]", ""), Duration.ofSeconds(120));
          assertEquals(Status.SUCCESS, r.getStatus(), r.toString());
          var json = new com.fasterxml.jackson.databind.ObjectMapper();
          assertEquals(
              json.readTree(
                  """
                  {"nodes": ["nvidia-uvm", "nvidia0", "nvidiactl"], "nvidia": "0",
                   "cuda": "GPU-aaaaaaaa-0000-0000-0000-000000000000",
                   "libs": ["libcuda.so", "libcuda.so.1", "libcuda.so.999.1.2",
                            "libnvidia-ml.so", "libnvidia-ml.so.1", "libnvidia-ml.so.999.1.2"],
                   "ld": "/usr/local/nvidia/lib64"}
                  """),
              json.readTree(r.getOutputJson().toStringUtf8()));

          GpuClaims claims = GpuClaims.of(home);
          Gpu first = host.gpus().get(0);
          assertTrue(claims.inUse(first), "claimed on the host while its container runs");
          // The worker samples its GPUs; a container's line carries its GPU's numbers.
          await(
              "a GPU sample on the container",
              () -> {
                List<ContainerInfo> cs = client.containers();
                return !cs.isEmpty() && cs.get(0).getGpuSamplesCount() == 1;
              });
          var sample = client.containers().get(0).getGpuSamples(0);
          assertEquals(42, sample.getUtilisation());
          assertEquals(10240, sample.getMemoryUsedMib());
          assertEquals(61, sample.getTemperatureC());
          assertEquals(300.0, sample.getPowerWatts());

          // With a memory snapshot asked for: a GPU container is never checkpointed, so it
          // starts plainly, with its GPU (the other one: the first is held).
          client.deploy(
              FunctionSpec.newBuilder()
                  .setApp("snap")
                  .setName("probe")
                  .setImage("py:1")
                  .setLanguage("python")
                  .setHandler("probe:probe")
                  .setSnapshot(true)
                  .setResources(Resources.newBuilder().addGpu("H100"))
                  .build(),
              code);
          Result snap =
              client.call("snap/probe", ControlClient.input("[null]", ""), Duration.ofSeconds(120));
          assertEquals(Status.SUCCESS, snap.getStatus(), snap.toString());
          assertEquals(
              "[\"nvidia-uvm\",\"nvidia1\",\"nvidiactl\"]",
              json.readTree(snap.getOutputJson().toStringUtf8()).path("nodes").toString());
          client.stopApp("snap");

          client.stopApp("gpu");
          await(
              "the GPU free again",
              () -> {
                try {
                  return !claims.inUse(first);
                } catch (java.io.IOException e) {
                  return false;
                }
              });
        }
      }
    }
  }
}
