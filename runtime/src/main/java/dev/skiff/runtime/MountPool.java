package dev.skiff.runtime;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.NoSuchImageException;
import dev.skiff.casfs.Owner;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.fuse.MountTable;
import dev.skiff.casfs.mount.ImageMount;
import dev.skiff.casfs.mount.MountRegistry;
import dev.skiff.casfs.store.Remotes;
import dev.skiff.tracer.TraceHook;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The image mounts a runtime's sandboxes run on: one mount per image, made once however many
 * sandboxes ask at the same time (the first asker mounts, the others wait for it; no lock is held
 * across a mount, so a slow image delays only its own sandboxes), counted while sandboxes use it,
 * and unmounted after it has been idle for {@code idle} (never, if null, until the pool closes).
 *
 * <p>Long-lived pools ({@code share}) announce their mounts in the home's {@link MountRegistry},
 * and every pool runs a stored image on a live mount another process of the home announced (a
 * {@code skiff mount}) instead of making its own. Mountpoints live under {@code
 * HOME/run/mounts/PID-START-N/}; {@link #reap} unmounts those of pools whose process is gone.
 *
 * <p>Thread safe.
 */
final class MountPool implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(MountPool.class);
  private static final AtomicInteger INSTANCES = new AtomicInteger();

  /** A root to run on, held until closed. */
  record Lease(Path path, ImageRef ref, Digest digest, String configJson, Runnable release)
      implements AutoCloseable {
    @Override
    public void close() {
      release.run();
    }
  }

  private static final class Entry {
    final Set<String> keys = new LinkedHashSet<>();
    final CompletableFuture<ImageMount> ready = new CompletableFuture<>();
    TraceHook hook;
    int refs;
    boolean closing;
    boolean registered;
    boolean unneeded; // unmounted as soon as no sandbox uses it, not after the idle time
    ScheduledFuture<?> idleTimer;
  }

  private final ImageStore store;
  private final Remotes remotes;
  private final ImageMount.Options mountOptions;
  private final TraceHook.Options traceOptions;
  private final boolean share;
  private final Duration idle;
  private final ScheduledExecutorService scheduler;
  private final RuntimeListener listener;
  private final Path mine;
  private final Map<String, Entry> entries = new HashMap<>();
  private int next;
  private boolean closed;

  MountPool(
      ImageStore store,
      Remotes remotes,
      ImageMount.Options mountOptions,
      TraceHook.Options traceOptions,
      boolean share,
      Duration idle,
      ScheduledExecutorService scheduler,
      RuntimeListener listener)
      throws IOException {
    this.store = store;
    this.remotes = remotes;
    this.mountOptions = mountOptions;
    this.traceOptions = traceOptions;
    this.share = share && !traceOptions.record();
    this.idle = idle;
    this.scheduler = scheduler;
    this.listener = listener;
    this.mine =
        Files.createDirectories(MountRegistry.dir(store.home()))
            .resolve(Owner.current().tag() + "-" + INSTANCES.incrementAndGet());
  }

  /**
   * A root for {@code spec}: a host directory as it is; else a mount this pool has, a live mount
   * another process of the home lends, or a new mount.
   *
   * @throws NoSuchImageException if the image does not exist
   */
  Lease acquire(ImageSpec spec) throws IOException {
    if (spec instanceof ImageSpec.HostDirectory dir) {
      if (!Files.isDirectory(dir.dir())) {
        throw new IOException("no directory " + dir.dir() + " to use as the root");
      }
      return new Lease(dir.dir(), null, null, null, () -> {});
    }
    String key;
    Digest stored = null;
    if (spec instanceof ImageSpec.Stored s) {
      stored = store.resolve(s.ref()).orElseThrow(() -> new NoSuchImageException(s.ref(), null));
      key = "digest:" + stored;
    } else {
      key = "spec:" + spec;
    }
    Entry e;
    boolean mountHere = false;
    synchronized (this) {
      if (closed) {
        throw new IllegalStateException("the runtime's mounts are closed");
      }
      e = entries.get(key);
      if (e == null && stored != null && !traceOptions.record()) {
        Optional<MountRegistry.Entry> lent = MountRegistry.find(store.home(), stored);
        if (lent.isPresent()) { // its entry carries the config: no index to open here
          return new Lease(
              Path.of(lent.get().mountpoint()),
              ((ImageSpec.Stored) spec).ref(),
              stored,
              lent.get().config(),
              () -> {});
        }
      }
      if (e == null) {
        e = new Entry();
        e.keys.add(key);
        entries.put(key, e);
        mountHere = true;
      }
      e.refs++;
      e.unneeded = false; // wanted again: kept the usual way
      if (e.idleTimer != null) {
        e.idleTimer.cancel(false);
        e.idleTimer = null;
      }
    }
    ImageMount m;
    if (mountHere) {
      m = mount(spec, e);
    } else {
      m = await(e);
    }
    Entry held = e;
    return new Lease(m.mountpoint(), m.ref(), m.digest(), m.configJson(), () -> release(held));
  }

  private ImageMount mount(ImageSpec spec, Entry e) throws IOException {
    try {
      Path mp;
      synchronized (this) {
        mp = Files.createDirectories(mine.resolve(Integer.toString(next++)));
      }
      e.hook = new TraceHook(traceOptions);
      ImageMount m = ImageMount.mount(store, spec, remotes, mp, mountOptions, e.hook);
      synchronized (this) {
        if (closed) { // the pool closed while this mount came up
          m.close();
          throw new IllegalStateException("the runtime's mounts are closed");
        }
        String alias = "digest:" + m.digest();
        if (!entries.containsKey(alias)) {
          entries.put(alias, e);
          e.keys.add(alias);
        }
      }
      if (share) {
        MountRegistry.register(store.home(), m);
        e.registered = true;
      }
      e.ready.complete(m);
      listener.event(new RuntimeEvent.ImageMounted(m.ref(), m.mountpoint()));
      return m;
    } catch (IOException | RuntimeException ex) {
      synchronized (this) {
        e.keys.forEach(k -> entries.remove(k, e));
      }
      e.ready.completeExceptionally(ex);
      throw ex;
    }
  }

  private static ImageMount await(Entry e) throws IOException {
    try {
      return e.ready.get();
    } catch (InterruptedException ie) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted waiting for an image to mount");
    } catch (ExecutionException ee) {
      if (ee.getCause() instanceof IOException io) {
        throw io;
      }
      throw new IOException("mounting the image failed: " + ee.getCause(), ee.getCause());
    }
  }

  private void release(Entry e) {
    synchronized (this) {
      e.refs--;
      if (e.refs > 0 || e.closing || closed || (idle == null && !e.unneeded)) {
        return;
      }
      e.idleTimer =
          scheduler.schedule(
              () -> expire(e), e.unneeded ? 0 : idle.toMillis(), TimeUnit.MILLISECONDS);
    }
  }

  /**
   * Says that {@code spec}'s mount will not be wanted again soon (a build step's parent, once the
   * step ran): it goes as soon as no sandbox uses it, not after the idle time. A later acquire
   * mounts it again, and keeps it the usual way.
   */
  void unneeded(ImageSpec spec) throws IOException {
    String key =
        spec instanceof ImageSpec.Stored s
            ? store.resolve(s.ref()).map(d -> "digest:" + d).orElse(null)
            : "spec:" + spec;
    synchronized (this) {
      Entry e = key == null ? null : entries.get(key);
      if (e == null || e.closing || closed) {
        return;
      }
      e.unneeded = true;
      if (e.refs == 0) {
        if (e.idleTimer != null) {
          e.idleTimer.cancel(false);
        }
        e.idleTimer = scheduler.schedule(() -> expire(e), 0, TimeUnit.MILLISECONDS);
      }
    }
  }

  /** Unmounts an entry that has stayed idle. */
  private void expire(Entry e) {
    synchronized (this) {
      if (e.refs > 0 || e.closing || closed) {
        return;
      }
      e.closing = true;
      e.keys.forEach(k -> entries.remove(k, e));
    }
    close(e, "idle for " + idle.toSeconds() + " s");
  }

  private void close(Entry e, String why) {
    ImageMount m = e.ready.getNow(null);
    if (m == null) {
      return;
    }
    if (e.registered) {
      MountRegistry.unregister(store.home(), m);
    }
    try {
      m.close();
      listener.event(new RuntimeEvent.ImageUnmounted(m.ref(), m.mountpoint(), why));
      e.hook
          .recorded()
          .ifPresent(
              r ->
                  listener.event(
                      new RuntimeEvent.TraceRecorded(
                          m.ref(), r.recording().entries().size(), r.merged().recordings())));
      Files.deleteIfExists(m.mountpoint());
    } catch (IOException ex) {
      LOG.warn("unmounting {} at {}: {}", m.ref(), m.mountpoint(), ex.toString());
    }
  }

  /** Mounts held now (each image once), for measurements. */
  synchronized int size() {
    return (int) entries.values().stream().distinct().count();
  }

  /**
   * Cleans what pools of processes that are gone left: their registry entries, and their mounts and
   * mountpoints. Returns what it cleaned.
   */
  static List<RuntimeEvent> reap(Path home) throws IOException {
    List<RuntimeEvent> done = new ArrayList<>();
    MountRegistry.reap(home);
    Path dir = MountRegistry.dir(home);
    if (!Files.isDirectory(dir)) {
      return done;
    }
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : s.toList()) {
        if (!Files.isDirectory(p) || ownerAlive(p.getFileName().toString())) {
          continue;
        }
        try (Stream<Path> mps = Files.list(p)) {
          for (Path mp : mps.toList()) {
            if (MountTable.fuseMountAt(mp) != null) {
              MountTable.unmount(mp);
              done.add(new RuntimeEvent.LeftoverCleaned(mp, "a mount of a runtime that is gone"));
            }
          }
        }
        Runsc.run(List.of("rm", "-rf", "--one-file-system", p.toString()), Duration.ofSeconds(30));
      }
    }
    return done;
  }

  /** Whether the pool a {@code PID-STARTDIGITS-N} directory belongs to is running. */
  private static boolean ownerAlive(String dirName) {
    int last = dirName.lastIndexOf('-');
    return last > 0 && Owner.aliveByTag(dirName.substring(0, last));
  }

  /** Unmounts every mount (saving recordings), whoever still holds a lease. Idempotent. */
  @Override
  public void close() throws IOException {
    List<Entry> all;
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      all = new ArrayList<>(new LinkedHashSet<>(entries.values()));
      entries.clear();
      for (Entry e : all) {
        e.closing = true;
        if (e.idleTimer != null) {
          e.idleTimer.cancel(false);
        }
      }
    }
    for (Entry e : all) {
      close(e, "closing");
    }
    Runsc.run(List.of("rm", "-rf", "--one-file-system", mine.toString()), Duration.ofSeconds(30));
  }
}
