package dev.skiff.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.NoSuchImageException;
import dev.skiff.casfs.fuse.MountTable;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.mount.ImageMount;
import dev.skiff.casfs.store.Remotes;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.HungServer;
import dev.skiff.casfs.testing.S3Server;
import dev.skiff.casfs.testing.Tars;
import dev.skiff.tracer.TraceHook;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The pool of image mounts a runtime's sandboxes run on: one mount per image however many ask at
 * once, idle mounts released, and no image held up by another's slow store. FUSE for real; no
 * sandbox, so no runsc.
 */
@Timeout(120)
class MountPoolTest {
  @TempDir Path tmp;

  ImageStore store;
  ScheduledExecutorService scheduler;
  final List<RuntimeEvent> events = new java.util.concurrent.CopyOnWriteArrayList<>();

  @BeforeEach
  void setUp() throws IOException {
    Environment.requireFuse();
    store = ImageStore.open(tmp.resolve("home"));
    for (String name : List.of("a", "b", "c")) {
      Path tar =
          new Tars()
              .file("etc/name", name)
              .file("bin/" + name, new byte[70_000], 0755)
              .write(tmp.resolve(name + ".tar"));
      store.importImage(tar.toString(), ImageRef.parse(name + ":1"), ImportProgress.NONE);
    }
    scheduler = Executors.newSingleThreadScheduledExecutor();
  }

  @AfterEach
  void tearDown() throws IOException {
    if (scheduler != null) {
      scheduler.shutdownNow();
    }
    if (store != null) {
      store.close();
    }
  }

  private MountPool pool(Remotes remotes, Duration idle) throws IOException {
    return new MountPool(
        store,
        remotes != null ? remotes : Remotes.fromEnvironment(),
        ImageMount.Options.defaults().withMemoryCache(8 << 20),
        TraceHook.Options.defaults(),
        false,
        idle,
        scheduler,
        events::add);
  }

  /**
   * Waits, at most 5 s, for the pool to say it unmounted (the unmount shows in the mount table a
   * moment before the pool says it is done).
   */
  private void awaitUnmounted() throws InterruptedException {
    for (int i = 0;
        i < 50 && events.stream().noneMatch(e -> e instanceof RuntimeEvent.ImageUnmounted);
        i++) {
      Thread.sleep(100);
    }
  }

  @Test
  void manyAskersAtOnceShareOneMount() throws Exception {
    try (MountPool pool = pool(null, null)) {
      ExecutorService askers = Executors.newFixedThreadPool(8);
      CountDownLatch go = new CountDownLatch(1);
      List<Future<MountPool.Lease>> leases = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        leases.add(
            askers.submit(
                () -> {
                  go.await();
                  return pool.acquire(ImageSpec.parse("a:1"));
                }));
      }
      go.countDown();
      Set<Path> paths = new HashSet<>();
      for (Future<MountPool.Lease> f : leases) {
        paths.add(f.get().path());
      }
      askers.shutdown();
      assertEquals(1, paths.size(), "one mount: " + paths);
      assertEquals(1, pool.size());
      assertEquals(1, events.stream().filter(e -> e instanceof RuntimeEvent.ImageMounted).count());
      Path mp = paths.iterator().next();
      assertEquals("a", Files.readString(mp.resolve("etc/name")));
      for (Future<MountPool.Lease> f : leases) {
        f.get().close();
      }
      assertNotNull(MountTable.fuseMountAt(mp), "no idle time set: kept until the pool closes");
      pool.close();
      assertNull(MountTable.fuseMountAt(mp));
    }
  }

  @Test
  void aMountNobodyUsesIsReleasedAfterItsIdleTimeAndComesBackWhenAsked() throws Exception {
    try (MountPool pool = pool(null, Duration.ofMillis(300))) {
      MountPool.Lease first = pool.acquire(ImageSpec.parse("b:1"));
      Path mp = first.path();
      MountPool.Lease second = pool.acquire(ImageSpec.parse("b:1"));
      first.close();
      Thread.sleep(800);
      assertNotNull(MountTable.fuseMountAt(mp), "still leased by the second");
      second.close();
      awaitUnmounted();
      assertNull(MountTable.fuseMountAt(mp), "unmounted once idle");
      assertEquals(0, pool.size());
      assertTrue(
          events.stream()
              .anyMatch(
                  e -> e instanceof RuntimeEvent.ImageUnmounted u && u.why().startsWith("idle")),
          events.toString());
      try (MountPool.Lease again = pool.acquire(ImageSpec.parse("b:1"))) {
        assertEquals("b", Files.readString(again.path().resolve("etc/name")));
      }
    }
  }

  @Test
  void aMountSaidUnneededGoesAsSoonAsNobodyUsesIt() throws Exception {
    try (MountPool pool = pool(null, Duration.ofHours(1))) {
      MountPool.Lease lease = pool.acquire(ImageSpec.parse("a:1"));
      Path mp = lease.path();
      pool.unneeded(ImageSpec.parse("a:1"));
      Thread.sleep(300);
      assertNotNull(MountTable.fuseMountAt(mp), "still leased: it stays");
      lease.close();
      awaitUnmounted();
      assertNull(MountTable.fuseMountAt(mp), "gone once released, not an hour later");
      assertEquals(0, pool.size());
      // Asked for again, it is kept the usual way.
      try (MountPool.Lease again = pool.acquire(ImageSpec.parse("a:1"))) {
        assertEquals("a", Files.readString(again.path().resolve("etc/name")));
      }
      Thread.sleep(300);
      assertEquals(1, pool.size(), "kept for its idle time");
    }
  }

  @Test
  void twoImagesMountWhileAThirdsStoreHangs() throws Exception {
    try (HungServer hung = HungServer.on(0)) {
      Remotes slow =
          S3Server.remotes(URI.create("http://127.0.0.1:" + hung.port()), Duration.ofSeconds(8), 1);
      try (MountPool pool = pool(slow, null)) {
        ExecutorService bg = Executors.newSingleThreadExecutor();
        Future<MountPool.Lease> stuck =
            bg.submit(() -> pool.acquire(ImageSpec.parse("s3://skiff-test/p/c:1")));
        Thread.sleep(300); // the bucket image's tag GET is now waiting on the hung store
        long t0 = System.nanoTime();
        try (MountPool.Lease a = pool.acquire(ImageSpec.parse("a:1"));
            MountPool.Lease b = pool.acquire(ImageSpec.parse("b:1"))) {
          double secs = (System.nanoTime() - t0) / 1e9;
          assertTrue(secs < 4, "two local images took " + secs + " s while the third hung");
          assertEquals("a", Files.readString(a.path().resolve("etc/name")));
          assertEquals("b", Files.readString(b.path().resolve("etc/name")));
          assertTrue(!stuck.isDone(), "the hung image is still waiting");
        }
        java.util.concurrent.ExecutionException failed =
            assertThrows(
                java.util.concurrent.ExecutionException.class,
                () -> stuck.get(30, TimeUnit.SECONDS));
        assertTrue(failed.getCause() instanceof IOException, failed.toString());
        bg.shutdown();
        assertEquals(2, pool.size(), "the failed mount left nothing in the pool");
      }
    }
  }

  @Test
  void aMissingImageIsATypedError() throws IOException {
    try (MountPool pool = pool(null, null)) {
      NoSuchImageException e =
          assertThrows(NoSuchImageException.class, () -> pool.acquire(ImageSpec.parse("nope:1")));
      assertEquals(ImageRef.parse("nope:1"), e.ref());
      assertEquals(0, pool.size());
    }
  }
}
