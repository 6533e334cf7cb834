package dev.skiff.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.S3Location;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.runtime.testing.HostRootfs;
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
  @TempDir
  Path tmp;

  @Test
  void runsAnImageStraightFromABucketAndRecordsItsStart() throws Exception {
    Environment.requireRunsc();
    try (S3Server server = new S3Server(tmp.resolve("s3"))) {
      try (ImageStore origin = ImageStore.open(tmp.resolve("origin"));
          BlobStore bucket = server.store("fleet", tmp.resolve("scratch"), Duration.ofSeconds(30))) {
        Path rootfs = HostRootfs.tools().build(tmp.resolve("rootfs"));
        origin.importImage(rootfs.toString(), ImageRef.parse("tools:1"), ImportProgress.NONE);
        origin.push(ImageRef.parse("tools:1"), bucket, ImageStore.PushProgress.NONE);
      }
      ImageMount.Remotes remotes = new ImageMount.Remotes() {
        @Override
        public S3Location location(String url) {
          return S3Location.parse(url, server.endpoint(), "us-east-1", true);
        }

        @Override
        public BlobStore open(S3Location where, Path scratch) {
          return BlobStores.s3(where, scratch, S3Server.credentials(), Duration.ofSeconds(20), 2);
        }
      };
      String image = "s3://" + S3Server.BUCKET + "/fleet/tools:1";
      Path home = tmp.resolve("host");
      for (boolean record : new boolean[] {true, false}) {
        try (ImageStore store = ImageStore.open(home);
            SandboxRuntime rt = SandboxRuntime.open(store, SandboxRuntime.Config.defaults().withRemotes(remotes)
                .withMount(ImageMount.Options.defaults().withRecord(record)));
            Sandbox sb = rt.run(image, SandboxOptions.defaults(), List.of("/bin/sh", "-c", "echo from the bucket"),
                false)) {
          ByteArrayOutputStream out = new ByteArrayOutputStream();
          Thread[] t = sb.main().orElseThrow().pipeTo(out, new ByteArrayOutputStream());
          assertEquals(0, sb.main().orElseThrow().waitFor());
          for (Thread th : t) {
            th.join();
          }
          assertEquals("from the bucket\n", out.toString(StandardCharsets.UTF_8));
          assertEquals("tools:1", sb.imageRef().toString());
        }
      }
      // The first start recorded its reads into a trace next to the image, in the bucket.
      try (BlobStore bucket = server.store("fleet", tmp.resolve("scratch"), Duration.ofSeconds(30))) {
        assertTrue(bucket.list("traces/").size() == 1, bucket.list("traces/").toString());
      }
      // Chunks came through the disk cache of the host's home.
      try (var files = Files.walk(home.resolve("cache"))) {
        assertTrue(files.anyMatch(Files::isRegularFile));
      }
    }
  }
}
