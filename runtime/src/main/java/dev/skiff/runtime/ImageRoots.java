package dev.skiff.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.Owner;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.fuse.MountTable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The image mounts sandboxes run on. A mount is made once and shared by every sandbox of the
 * runtime that made it (kept until the runtime closes, so its kernel and chunk caches stay warm
 * between sandboxes). Long-lived owners (a {@code skiff mount}, a runtime configured to share)
 * register their mounts in {@code $SKIFF_HOME/run/mounts/}, where other processes of the home find
 * them and run on them instead of mounting again. A mount whose owner is gone is ignored, and
 * cleaned by the next runtime start.
 */
public final class ImageRoots implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ImageRoots.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final java.util.concurrent.atomic.AtomicInteger INSTANCES =
      new java.util.concurrent.atomic.AtomicInteger();

  /** What a registry entry says: who serves which image where. */
  record Entry(
      long pid, String start, String image, String digest, String mountpoint, String config) {}

  /** A root to run on: where it is mounted, which image, and its config. */
  record Root(Path path, ImageRef ref, Digest digest, ImageConfig config) {}

  private final ImageStore store;
  private final SandboxRuntime.Config config;
  private final ImageMount.Remotes remotes;
  private final Path dir;
  private final Path mine;
  private final Map<String, ImageMount> mounts = new HashMap<>();
  private int next;

  ImageRoots(ImageStore store, SandboxRuntime.Config config, ImageMount.Remotes remotes)
      throws IOException {
    this.store = store;
    this.config = config;
    this.remotes = remotes;
    this.dir = Files.createDirectories(registryDir(store.home()));
    this.mine = dir.resolve(Owner.current().tag() + "-" + INSTANCES.incrementAndGet());
  }

  static Path registryDir(Path home) {
    return home.resolve("run").resolve("mounts");
  }

  /**
   * A root for {@code image} (NAME[:TAG] or s3://...): a mount this runtime already has, a live
   * mount another process registered, or a new mount (kept and registered).
   */
  synchronized Root acquire(String image) throws IOException {
    boolean remote = image.startsWith("s3://");
    boolean record = config.mount().record();
    Optional<Digest> d = remote ? Optional.empty() : store.resolve(ImageRef.parse(image));
    String key = d.map(Digest::toString).orElse(image);
    ImageMount m = mounts.get(key);
    if (m != null && m.isMounted()) {
      return root(m);
    }
    if (d.isPresent() && !record) {
      Optional<Entry> shared = find(store.home(), d.get());
      if (shared.isPresent()) { // its entry carries the config: no index to open here
        return new Root(
            Path.of(shared.get().mountpoint()),
            ImageRef.parse(image),
            d.get(),
            ImageConfig.parse(shared.get().config()));
      }
    }
    Path mp = Files.createDirectories(mine.resolve(Integer.toString(next++)));
    m = ImageMount.mount(store, image, remotes, mp, config.mount());
    mounts.put(d.isPresent() ? key : m.digest().toString(), m);
    mounts.put(image, m);
    if (!record && config.shareMounts()) {
      register(store.home(), m);
    }
    return root(m);
  }

  private static Root root(ImageMount m) throws IOException {
    return new Root(
        m.mountpoint(), m.ref(), m.digest(), ImageConfig.parse(m.index().meta("config")));
  }

  /** Announces {@code m} to other processes of this home (skiff mount does), so they run on it. */
  public static void register(Path home, ImageMount m) throws IOException {
    Path dir = Files.createDirectories(registryDir(home));
    Owner me = Owner.current();
    Entry e =
        new Entry(
            me.pid(),
            me.start(),
            m.ref().toString(),
            m.digest().toString(),
            m.mountpoint().toString(),
            m.index().meta("config"));
    Path tmp = dir.resolve(entryName(m) + ".tmp");
    JSON.writeValue(tmp.toFile(), e);
    Files.move(
        tmp,
        dir.resolve(entryName(m)),
        StandardCopyOption.ATOMIC_MOVE,
        StandardCopyOption.REPLACE_EXISTING);
  }

  /** Withdraws what {@link #register} announced. */
  public static void unregister(Path home, ImageMount m) {
    try {
      Files.deleteIfExists(registryDir(home).resolve(entryName(m)));
    } catch (IOException e) {
      log.debug("unregistering {}: {}", m.mountpoint(), e.toString());
    }
  }

  private static String entryName(ImageMount m) {
    return m.digest().algorithm().label()
        + "-"
        + m.digest().hex()
        + "."
        + ProcessHandle.current().pid()
        + "-"
        + Integer.toHexString(m.mountpoint().hashCode())
        + ".json";
  }

  /** A live mount of {@code digest} that some process of this home serves. */
  static Optional<Entry> find(Path home, Digest digest) throws IOException {
    for (Entry e : entries(home)) {
      Path mp = Path.of(e.mountpoint());
      if (e.digest().equals(digest.toString())
          && alive(e)
          && MountTable.fuseMountAt(mp) != null
          && !MountTable.isStale(mp)) {
        return Optional.of(e);
      }
    }
    return Optional.empty();
  }

  private static List<Entry> entries(Path home) throws IOException {
    Path dir = registryDir(home);
    List<Entry> out = new ArrayList<>();
    if (!Files.isDirectory(dir)) {
      return out;
    }
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : s.filter(p -> p.toString().endsWith(".json")).toList()) {
        try {
          out.add(JSON.readValue(p.toFile(), Entry.class));
        } catch (IOException e) {
          // half written or half removed: not an entry
        }
      }
    }
    return out;
  }

  private static boolean alive(Entry e) {
    return new Owner(e.pid(), e.start()).alive();
  }

  /**
   * Cleans what dead owners left: their registry entries, and the mounts (and mountpoints) of
   * runtimes that died. Returns a message per mount cleaned.
   */
  static List<String> reap(Path home) throws IOException {
    List<String> notes = new ArrayList<>();
    Path dir = registryDir(home);
    if (!Files.isDirectory(dir)) {
      return notes;
    }
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : s.toList()) {
        String name = p.getFileName().toString();
        if (name.endsWith(".json")) {
          Entry e;
          try {
            e = JSON.readValue(p.toFile(), Entry.class);
          } catch (IOException bad) {
            continue;
          }
          if (!alive(e)) {
            Files.deleteIfExists(p);
          }
        } else if (Files.isDirectory(p) && !ownerAlive(name)) {
          try (Stream<Path> mps = Files.list(p)) {
            for (Path mp : mps.toList()) {
              if (MountTable.fuseMountAt(mp) != null) {
                MountTable.unmount(mp);
                notes.add("unmounted " + mp + ", left by a runtime that is gone");
              }
            }
          }
          Runsc.run(
              List.of("rm", "-rf", "--one-file-system", p.toString()),
              java.time.Duration.ofSeconds(30));
        }
      }
    }
    return notes;
  }

  /** Whether the runtime a {@code PID-STARTDIGITS-N} directory belongs to is running. */
  private static boolean ownerAlive(String dirName) {
    int last = dirName.lastIndexOf('-');
    return last > 0 && Owner.aliveByTag(dirName.substring(0, last));
  }

  /** Unmounts every mount this runtime made (saving recordings), and forgets them. */
  @Override
  public synchronized void close() throws IOException {
    IOException first = null;
    for (ImageMount m : new java.util.LinkedHashSet<>(mounts.values())) {
      unregister(store.home(), m);
      try {
        if (m.recording()) {
          m.unmount();
          m.saveRecording()
              .ifPresent(
                  r ->
                      config
                          .notices()
                          .accept(
                              "recorded "
                                  + r.recording().entries().size()
                                  + " chunks into the trace of "
                                  + m.ref()
                                  + " ("
                                  + r.merged().recordings()
                                  + " recordings)"));
        }
        m.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    mounts.clear();
    try {
      Runsc.run(
          List.of("rm", "-rf", "--one-file-system", mine.toString()),
          java.time.Duration.ofSeconds(30));
    } catch (IOException e) {
      first = first == null ? e : first;
    }
    if (first != null) {
      throw first;
    }
  }
}
