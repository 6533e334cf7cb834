package dev.skiff.tools;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.fuse.FuseMount;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.S3Location;
import dev.skiff.runtime.Sandbox;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxProcess;
import dev.skiff.runtime.SandboxRuntime;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * The training run behind the launcher's JDK AOT cache (JEP 483/514): exercises import, the index,
 * the read path, a FUSE mount and a sandbox start (as root) and the S3 client, so that their
 * classes are loaded and linked ahead of time in later runs. Not for people; hidden from help.
 */
@Command(name = "train-aot", hidden = true)
final class TrainCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "WORKDIR")
  Path work;

  @Override
  public Integer call() throws Exception {
    Path rootfs = Files.createDirectories(work.resolve("rootfs/app"));
    Files.write(rootfs.resolve("data.bin"), new byte[(1 << 20) + 5000]);
    Files.writeString(rootfs.resolve("hello.txt"), "hello\n");
    try (ImageStore s = ImageStore.open(work.resolve("home"))) {
      s.importImage(
          work.resolve("rootfs").toString(), ImageRef.parse("train:1"), ImportProgress.NONE);
      s.images();
      try (ImageIndex index = s.openIndex(ImageRef.parse("train:1"))) {
        ChunkReader chunks = new ChunkReader(s.blobs(), 16 << 20, null, Runnable::run, 1 << 20);
        ImageFileSystem fs = new ImageFileSystem(index, chunks);
        long ino = index.resolve("app/data.bin");
        fs.read(ino, 0, 1 << 20, ByteBuffer.allocate(1 << 20));
        if ("root".equals(System.getProperty("user.name")) && Files.exists(Path.of("/dev/fuse"))) {
          Path mp = Files.createDirectories(work.resolve("mnt"));
          try (FuseMount m = FuseMount.mount(mp, fs, FuseMount.Options.defaults())) {
            try (var list = Files.list(mp.resolve("app"))) {
              list.count();
            }
            Files.readAllBytes(mp.resolve("app/data.bin"));
            Files.readString(mp.resolve("app/hello.txt"));
          }
        }
      }
      trainRuntime(s);
      trainControlPlane(work);
      int port;
      try (ServerSocket closed = new ServerSocket(0)) {
        port = closed.getLocalPort();
      }
      S3Location nowhere =
          new S3Location("train", "p", URI.create("http://127.0.0.1:" + port), "us-east-1", true);
      try (BlobStore remote =
          BlobStores.s3(
              nowhere,
              work.resolve("tmp"),
              software.amazon.awssdk.auth.credentials.AnonymousCredentialsProvider.create(),
              Duration.ofSeconds(2),
              1)) {
        remote.size("refs/train/1");
      } catch (java.io.IOException expected) {
        // nothing listens there: the client's classes are what the run is for
      }
    }
    return 0;
  }

  /**
   * The control plane's client and server over loopback gRPC, as the client commands and skiff
   * serve use them: a deploy, a call that waits for a worker that never comes, a map, the lists.
   */
  private static void trainControlPlane(Path work) {
    String token = dev.skiff.scheduler.client.Tokens.generate();
    try (var state = dev.skiff.scheduler.state.LmdbControlState.open(work.resolve("control"));
        var server =
            dev.skiff.scheduler.control.SchedulerServer.start(
                state,
                new dev.skiff.scheduler.control.SchedulerServer.Options(
                    new java.net.InetSocketAddress("127.0.0.1", 0), token, token, null, null));
        var client =
            dev.skiff.scheduler.client.ControlClient.connect(
                "127.0.0.1:" + server.port(), token, null)) {
      client.deploy(
          dev.skiff.scheduler.proto.FunctionSpec.newBuilder()
              .setApp("train")
              .setName("f")
              .setImage("train:1")
              .setLanguage("python")
              .setHandler("m:f")
              .build(),
          work.resolve("rootfs"));
      var in = Inputs.parse("{\"x\": 1}");
      client.call("train/f", in, Duration.ofMillis(50));
      String id = client.spawn("train/f", in);
      client.get(id, Duration.ZERO);
      client.cancel(id, false);
      client.functions();
      client.calls(10, null);
      client.containers();
      client.workers();
      client.secrets();
    } catch (Exception e) {
      // the classes are what the run is for
    }
  }

  /**
   * A sandbox start as skiff run makes one, where runsc is installed: the runtime's classes (runsc,
   * the image mount, the OCI spec, process plumbing, teardown). The training image has no program
   * to run, so the sandbox fails to exec, which is all the same for class loading.
   */
  private static void trainRuntime(ImageStore s) {
    if (!"root".equals(System.getProperty("user.name")) || !Files.exists(Path.of("/dev/fuse"))) {
      return;
    }
    try (SandboxRuntime rt = SandboxRuntime.open(s, SandboxRuntime.Config.defaults())) {
      rt.sandboxes().list();
      rt.snapshots().list(ImageSpec.parse("train:1"));
      try (Sandbox sb =
          rt.run(
              ImageSpec.parse("train:1"),
              SandboxOptions.defaults(),
              List.of("/app/hello.txt"),
              false)) {
        SandboxProcess p = sb.main().orElseThrow();
        p.pipeTo(OutputStream.nullOutputStream(), OutputStream.nullOutputStream());
        p.waitFor(Duration.ofSeconds(20));
      }
      // skiff run handed to a daemon: both ends of the local socket
      try (LocalDaemon d = LocalDaemon.start(s.home(), rt)) {
        SandboxCliOptions none = new SandboxCliOptions();
        LocalDaemon.tryHandOff(
            s.home(),
            LocalDaemon.Request.of("run", "train:1", null, List.of("/app/hello.txt"), false, none));
      } catch (Exception e) {
        // what failed does not matter: the classes are what the run is for
      }
    } catch (Exception noRunsc) {
      // no runsc here, or it failed: the rest of the training still counts
    }
  }
}
