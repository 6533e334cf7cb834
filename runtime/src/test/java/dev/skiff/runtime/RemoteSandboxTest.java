package dev.skiff.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.Remotes;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.runtime.testing.HostRootfs;
import dev.skiff.tracer.TraceHook;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** A sandbox on an image read lazily from a bucket (a real S3 API server in this JVM). */
@Timeout(180)
class RemoteSandboxTest {
  @TempDir Path tmp;

  @Test
  void runsAnImageStraightFromABucketRecordsItsStartAndSharesItsSnapshots() throws Exception {
    Environment.requireRunsc();
    try (S3Server server = new S3Server(tmp.resolve("s3"))) {
      try (ImageStore origin = ImageStore.open(tmp.resolve("origin"));
          BlobStore bucket =
              server.store("fleet", tmp.resolve("scratch"), Duration.ofSeconds(30))) {
        Path rootfs = HostRootfs.tools().build(tmp.resolve("rootfs"));
        origin.importImage(rootfs.toString(), ImageRef.parse("tools:1"), ImportProgress.NONE);
        origin.push(ImageRef.parse("tools:1"), bucket, ImageStore.PushProgress.NONE);
      }
      Remotes remotes = S3Server.remotes(server.endpoint(), Duration.ofSeconds(20), 2);
      String image = "s3://" + S3Server.BUCKET + "/fleet/tools:1";
      Path home = tmp.resolve("host");
      for (boolean record : new boolean[] {true, false}) {
        try (ImageStore store = ImageStore.open(home);
            SandboxRuntime rt =
                SandboxRuntime.open(
                    store,
                    SandboxRuntime.Config.defaults()
                        .withRemotes(remotes)
                        .withTrace(TraceHook.Options.defaults().withRecord(record)));
            Sandbox sb =
                rt.run(
                    ImageSpec.parse(image),
                    SandboxOptions.defaults(),
                    List.of("/bin/sh", "-c", "echo from the bucket"),
                    false)) {
          ByteArrayOutputStream out = new ByteArrayOutputStream();
          Thread[] t = sb.main().orElseThrow().pipeTo(out, new ByteArrayOutputStream());
          assertEquals(0, sb.main().orElseThrow().waitFor().code());
          for (Thread th : t) {
            th.join();
          }
          assertEquals("from the bucket\n", out.toString(StandardCharsets.UTF_8));
          assertEquals("tools:1", sb.imageRef().toString());
        }
      }
      // The first start recorded its reads into a trace next to the image, in the bucket.
      try (BlobStore bucket =
          server.store("fleet", tmp.resolve("scratch"), Duration.ofSeconds(30))) {
        assertTrue(bucket.list("traces/").size() == 1, bucket.list("traces/").toString());
      }
      // Chunks came through the disk cache of the host's home.
      try (var files = Files.walk(home.resolve("cache"))) {
        assertTrue(files.anyMatch(Files::isRegularFile));
      }

      // A snapshot taken on this host goes to the bucket; another host restores it from there.
      try (ImageStore store = ImageStore.open(home);
          SandboxRuntime rt =
              SandboxRuntime.open(store, SandboxRuntime.Config.defaults().withRemotes(remotes));
          Sandbox sb =
              rt.run(
                  ImageSpec.parse(image),
                  SandboxOptions.defaults(),
                  List.of(
                      "/bin/sh",
                      "-c",
                      "where=host-a; echo skiff:ready; read line; echo \"$line on a sandbox from $where\""),
                  true)) {
        var reader =
            new java.io.BufferedReader(
                new java.io.InputStreamReader(
                    sb.main().orElseThrow().stdout(), StandardCharsets.UTF_8));
        assertEquals("skiff:ready", reader.readLine());
        sb.checkpoint("ready");
      }
      Path other = tmp.resolve("host-b");
      try (ImageStore store = ImageStore.open(other);
          BlobStore bucket =
              server.store("fleet", tmp.resolve("scratch"), Duration.ofSeconds(30))) {
        assertTrue(
            bucket.list("snapshots/").stream().anyMatch(b -> b.endsWith("/ready/snapshot.json")),
            bucket.list("snapshots/").toString());
        store.pull(bucket, server.location("fleet"), ImageRef.parse("tools:1"));
      }
      try (ImageStore store = ImageStore.open(other);
          SandboxRuntime rt =
              SandboxRuntime.open(store, SandboxRuntime.Config.defaults().withRemotes(remotes))) {
        assertEquals(
            List.of("ready"),
            rt.snapshots().list(ImageSpec.parse("tools:1")).stream().map(Snapshot::name).toList());
        try (Sandbox sb =
            rt.restore(
                rt.snapshots().find(ImageSpec.parse("tools:1"), "ready"),
                SandboxOptions.defaults(),
                true)) {
          SandboxProcess p = sb.main().orElseThrow();
          try (var in = p.stdin()) {
            in.write("restored on host-b\n".getBytes(StandardCharsets.UTF_8));
          }
          ByteArrayOutputStream out = new ByteArrayOutputStream();
          Thread[] t = p.pipeTo(out, new ByteArrayOutputStream());
          assertEquals(0, p.waitFor().code());
          for (Thread th : t) {
            th.join();
          }
          assertEquals(
              "restored on host-b on a sandbox from host-a\n",
              out.toString(StandardCharsets.UTF_8));
        }
      }
      // The bucket holds the files zstd-compressed and snapshot.json lists them with their sizes;
      // a snapshot stored before that (plain files, found by listing) still fetches, whole.
      try (BlobStore bucket =
          server.store("fleet", tmp.resolve("scratch"), Duration.ofSeconds(30))) {
        String meta = readyMeta(bucket);
        String prefix = meta.substring(0, meta.length() - "snapshot.json".length());
        for (String blob : bucket.list(prefix)) {
          if (blob.endsWith(".zst")) {
            byte[] plain;
            try (var in =
                new com.github.luben.zstd.ZstdInputStream(
                    new java.io.ByteArrayInputStream(bucket.readAll(blob).orElseThrow()))) {
              plain = in.readAllBytes();
            }
            bucket.put(
                blob.substring(0, blob.length() - 4), new java.io.ByteArrayInputStream(plain));
            bucket.delete(blob);
          }
        }
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var m =
            (com.fasterxml.jackson.databind.node.ObjectNode)
                json.readTree(bucket.readAll(meta).orElseThrow());
        assertTrue(m.has("files") && m.path("compression").asText().equals("zstd"), m.toString());
        m.remove("files");
        m.remove("compression");
        bucket.put(meta, new java.io.ByteArrayInputStream(json.writeValueAsBytes(m)));
      }
      Path third = tmp.resolve("host-c");
      pullOnto(third, server);
      try (ImageStore store = ImageStore.open(third);
          SandboxRuntime rt =
              SandboxRuntime.open(store, SandboxRuntime.Config.defaults().withRemotes(remotes))) {
        Snapshot fetched = rt.snapshots().find(ImageSpec.parse("tools:1"), "ready");
        Path taken = home.resolve(third.relativize(fetched.dir())); // as host-a took it
        List<Path> files;
        try (var walk = Files.walk(taken)) {
          files =
              walk.filter(Files::isRegularFile)
                  .filter(f -> !f.getFileName().toString().equals("snapshot.json"))
                  .toList();
        }
        assertTrue(files.size() >= 2, files.toString());
        for (Path f : files) {
          Path got = fetched.dir().resolve(taken.relativize(f));
          assertTrue(
              java.util.Arrays.equals(Files.readAllBytes(f), Files.readAllBytes(got)),
              taken.relativize(f) + " fetched whole");
        }
      }
      // A snapshot.json that claims sizes no snapshot has is refused before anything is fetched.
      try (BlobStore bucket =
          server.store("fleet", tmp.resolve("scratch"), Duration.ofSeconds(30))) {
        String meta = readyMeta(bucket);
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var m =
            (com.fasterxml.jackson.databind.node.ObjectNode)
                json.readTree(bucket.readAll(meta).orElseThrow());
        m.put("compression", "zstd");
        m.putObject("files").put("checkpoint/pages.img", Long.MAX_VALUE);
        bucket.put(meta, new java.io.ByteArrayInputStream(json.writeValueAsBytes(m)));
      }
      Path fourth = tmp.resolve("host-d");
      pullOnto(fourth, server);
      try (ImageStore store = ImageStore.open(fourth);
          SandboxRuntime rt =
              SandboxRuntime.open(store, SandboxRuntime.Config.defaults().withRemotes(remotes))) {
        java.io.IOException e =
            org.junit.jupiter.api.Assertions.assertThrows(
                java.io.IOException.class,
                () -> rt.snapshots().find(ImageSpec.parse("tools:1"), "ready"));
        assertTrue(e.getMessage().contains("of a size no snapshot has"), e.getMessage());
        rt.snapshots().remove(ImageSpec.parse("tools:1"), "ready");
      }
      try (BlobStore bucket =
          server.store("fleet", tmp.resolve("scratch"), Duration.ofSeconds(30))) {
        assertEquals(List.of(), bucket.list("snapshots/"));
      }
    }
  }

  /** Pulls tools:1 from the test bucket into the store at {@code home}. */
  private void pullOnto(Path home, S3Server server) throws Exception {
    try (ImageStore store = ImageStore.open(home);
        BlobStore bucket = server.store("fleet", tmp.resolve("scratch"), Duration.ofSeconds(30))) {
      store.pull(bucket, server.location("fleet"), ImageRef.parse("tools:1"));
    }
  }

  /** The bucket's snapshot.json of the snapshot named ready. */
  private static String readyMeta(BlobStore bucket) throws Exception {
    return bucket.list("snapshots/").stream()
        .filter(b -> b.endsWith("/ready/snapshot.json"))
        .findFirst()
        .orElseThrow();
  }
}
