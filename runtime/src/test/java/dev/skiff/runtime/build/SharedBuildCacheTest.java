package dev.skiff.runtime.build;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.S3Location;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.runtime.Sandbox;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.testing.HostRootfs;
import java.io.ByteArrayOutputStream;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two hosts, each with a store of its own, share build steps through a bucket: what one built the
 * other fetches instead of running (a step that writes random bytes proves it was not run again), a
 * changed step reruns there alone and is shared back, and a cache that does not answer only costs
 * the sharing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(300)
class SharedBuildCacheTest {
  @TempDir static Path tmp;
  S3Server server;
  Host a;
  Host b;
  Path context;
  Path rootfs;

  /** A host: its own store and runtime. */
  record Host(ImageStore store, SandboxRuntime rt, List<String> log) implements AutoCloseable {
    static Host open(Path home, Path rootfs) throws Exception {
      ImageStore s = ImageStore.open(home);
      s.importImage(rootfs.toString(), ImageRef.parse("tools:1"), ImportProgress.NONE);
      return new Host(
          s,
          SandboxRuntime.open(s, SandboxRuntime.Config.defaults()),
          new CopyOnWriteArrayList<>());
    }

    ImageBuilder.Result build(String dockerfile, Path context, ImageBuilder.SharedCache cache)
        throws Exception {
      log.clear();
      return new ImageBuilder(
              store,
              rt,
              log::add,
              dev.skiff.casfs.registry.RegistryClient.Options.defaults(),
              cache)
          .build(dockerfile, context, ImageRef.parse("app:1"), Map.of(), false);
    }

    Digest app() throws Exception {
      return store.resolve(ImageRef.parse("app:1")).orElseThrow();
    }

    String run(String... cmd) throws Exception {
      try (Sandbox sb =
          rt.run(ImageSpec.parse("app:1"), SandboxOptions.defaults(), List.of(cmd), false)) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        var p = sb.main().orElseThrow();
        Thread[] pumps = p.pipeTo(out, out);
        p.waitFor();
        for (Thread t : pumps) {
          t.join();
        }
        return out.toString(StandardCharsets.UTF_8);
      }
    }

    @Override
    public void close() throws Exception {
      rt.close();
      store.close();
    }
  }

  @BeforeAll
  void setUp() throws Exception {
    Environment.requireRunsc();
    server = new S3Server(tmp.resolve("s3"));
    rootfs = HostRootfs.tools().build(tmp.resolve("rootfs"));
    a = Host.open(tmp.resolve("host-a"), rootfs);
    b = Host.open(tmp.resolve("host-b"), rootfs);
    context = Files.createDirectories(tmp.resolve("context"));
    Files.writeString(context.resolve("data.txt"), "from the context\n");
  }

  @AfterAll
  void tearDown() throws Exception {
    for (AutoCloseable c : new AutoCloseable[] {a, b, server}) {
      if (c != null) {
        c.close();
      }
    }
  }

  private ImageBuilder.SharedCache cache() {
    return new ImageBuilder.SharedCache(
        server.store("cache", tmp.resolve("scratch"), Duration.ofSeconds(30)),
        server.location("cache"));
  }

  static final String STEPS =
      """
      FROM tools:1
      COPY data.txt /data.txt
      RUN head -c 32 /dev/urandom > /random && echo one > /one
      RUN echo two > /two
      """;

  @Test
  void hostsShareStepsThroughABucket() throws Exception {
    ImageBuilder.Result first = a.build(STEPS, context, cache());
    assertEquals(0, first.cached());

    // Host B runs nothing: every step is in the bucket, and the last one is fetched whole.
    ImageBuilder.Result second = b.build(STEPS, context, cache());
    assertEquals(3, second.cached(), b.log().toString());
    assertEquals(3, b.log().stream().filter(l -> l.contains("(cached in s3://")).count());
    assertEquals(a.app(), b.app(), "the same image: the random bytes were not made again");
    assertTrue(b.store().remoteOf(ImageRef.parse("app:1")).isEmpty(), "an image of B's store");
    assertEquals("from the context\none\ntwo\n", b.run("cat", "/data.txt", "/one", "/two"));

    // B changes the last step: it alone runs, on the fetched step before it, and is shared back.
    String changed = STEPS.replace("echo two > /two", "echo three > /two");
    ImageBuilder.Result third = b.build(changed, context, cache());
    assertEquals(2, third.cached(), b.log().toString());
    assertTrue(b.log().contains("RUN echo three > /two"), b.log().toString());
    assertEquals("one\nthree\n", b.run("cat", "/one", "/two"));
    ImageBuilder.Result back = a.build(changed, context, cache());
    assertEquals(3, back.cached(), a.log().toString());
    assertEquals(b.app(), a.app());
    assertNotEquals(second.index(), third.index());
  }

  @Test
  void aStepTheBucketListsAndCannotGiveIsBuiltHere() throws Exception {
    // 13 KB: stored in a pack, not in the index
    String steps = "FROM tools:1\nRUN seq 1 3000 > /kept\n";
    a.build(steps, context, cache());
    // A lifecycle rule took the packs, the tags stayed.
    try (BlobStore bucket = server.store("cache", tmp.resolve("scratch"), Duration.ofSeconds(30))) {
      for (String pack : bucket.list("packs/")) {
        bucket.delete(pack);
      }
    }
    try (Host c = Host.open(tmp.resolve("host-c"), rootfs)) {
      ImageBuilder.Result r = c.build(steps, context, cache());
      assertEquals(0, r.cached(), c.log().toString());
      assertTrue(
          c.log().stream().anyMatch(l -> l.contains("building here without the shared cache")),
          c.log().toString());
      assertEquals("1\n2\n", c.run("head", "-n", "2", "/kept"));
    }
  }

  @Test
  void aCacheThatDoesNotAnswerOnlyCostsTheSharing() throws Exception {
    int dead;
    try (ServerSocket s = new ServerSocket(0)) {
      dead = s.getLocalPort();
    }
    S3Location nowhere =
        new S3Location(
            S3Server.BUCKET, "cache", URI.create("http://127.0.0.1:" + dead), "us-east-1", true);
    try (BlobStore remote =
        BlobStores.s3(
            nowhere, tmp.resolve("scratch"), S3Server.credentials(), Duration.ofSeconds(5), 2)) {
      String steps = "FROM tools:1\nRUN echo alone > /alone\n";
      ImageBuilder.Result r =
          a.build(steps, context, new ImageBuilder.SharedCache(remote, nowhere));
      assertEquals(0, r.cached());
      assertTrue(a.log().stream().anyMatch(l -> l.contains("did not answer")), a.log().toString());
      assertTrue(a.log().stream().anyMatch(l -> l.contains("could not share")), a.log().toString());
      assertEquals("alone\n", a.run("cat", "/alone"));
    }
  }
}
