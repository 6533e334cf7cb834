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
      trainRegistryPull(s);
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
   * A pull from a registry on loopback (this process serves it: the distribution API's GETs for a
   * manifest, a config and a gzip layer), as {@code skiff pull} and a build's {@code FROM
   * docker://} make it: the HTTP client, the manifest and digest checks, gzip and tar.
   */
  private static void trainRegistryPull(ImageStore s) {
    java.util.function.Function<byte[], String> sha256 =
        b -> dev.skiff.casfs.digest.DigestAlgorithm.SHA256.digest(b).toString();
    com.sun.net.httpserver.HttpServer http = null;
    try {
      java.io.ByteArrayOutputStream tar = new java.io.ByteArrayOutputStream();
      try (var gz = new java.util.zip.GZIPOutputStream(tar);
          var out = new org.apache.commons.compress.archivers.tar.TarArchiveOutputStream(gz)) {
        byte[] body = new byte[(1 << 20) + 3000];
        new java.util.Random(7).nextBytes(body);
        for (String name : List.of("app/lib/a.bin", "app/lib/b.txt")) {
          var e = new org.apache.commons.compress.archivers.tar.TarArchiveEntry(name);
          byte[] content = name.endsWith(".txt") ? "text\n".getBytes() : body;
          e.setSize(content.length);
          out.putArchiveEntry(e);
          out.write(content);
          out.closeArchiveEntry();
        }
      }
      byte[] layer = tar.toByteArray();
      byte[] config =
          "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}"
              .getBytes(java.nio.charset.StandardCharsets.UTF_8);
      java.util.Map<String, byte[]> blobs = new java.util.HashMap<>();
      blobs.put(sha256.apply(layer), layer);
      blobs.put(sha256.apply(config), config);
      byte[] manifest =
          ("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                  + "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\""
                  + sha256.apply(config)
                  + "\",\"size\":"
                  + config.length
                  + "},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\""
                  + sha256.apply(layer)
                  + "\",\"size\":"
                  + layer.length
                  + "}]}")
              .getBytes(java.nio.charset.StandardCharsets.UTF_8);
      http =
          com.sun.net.httpserver.HttpServer.create(
              new java.net.InetSocketAddress("127.0.0.1", 0), 0);
      http.createContext(
          "/v2/",
          ex -> {
            String path = ex.getRequestURI().getPath();
            byte[] body = null;
            String type = "application/octet-stream";
            if (path.equals("/v2/")) {
              body = "{}".getBytes();
            } else if (path.endsWith("/manifests/1")) {
              body = manifest;
              type = "application/vnd.oci.image.manifest.v1+json";
              ex.getResponseHeaders().add("Docker-Content-Digest", sha256.apply(manifest));
            } else if (path.contains("/blobs/")) {
              body = blobs.get(path.substring(path.lastIndexOf('/') + 1));
            }
            ex.getResponseHeaders().add("Content-Type", type);
            ex.sendResponseHeaders(body == null ? 404 : 200, body == null ? -1 : body.length);
            if (body != null && !ex.getRequestMethod().equals("HEAD")) {
              ex.getResponseBody().write(body);
            }
            ex.close();
          });
      http.start();
      s.pullFromRegistry(
          dev.skiff.casfs.registry.RegistryRef.parse(
              "docker://127.0.0.1:" + http.getAddress().getPort() + "/train/img:1"),
          dev.skiff.casfs.registry.RegistryClient.Options.defaults().withDockerConfig(null),
          ImageRef.parse("train-pull:1"),
          ImportProgress.NONE);
    } catch (Exception | LinkageError e) {
      // what failed does not matter: the classes are what the run is for
    } finally {
      if (http != null) {
        http.stop(0);
      }
    }
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
