package dev.skiff.casfs.mount;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.casfs.Owner;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.fuse.MountTable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Mounts that long-lived processes of one Skiff home lend to the others ({@code skiff mount}, a
 * worker): announced in {@code HOME/run/mounts/*.json}, found by image digest, so that a {@code
 * skiff run} of that image runs on the warm mount instead of making its own. An entry carries the
 * image's config, so a borrower opens no index. Entries of processes that are gone are ignored and
 * removed by {@link #reap}.
 */
public final class MountRegistry {
  private static final Logger LOG = LoggerFactory.getLogger(MountRegistry.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Who serves which image where. */
  public record Entry(
      long pid, String start, String image, String digest, String mountpoint, String config) {
    /** Whether the process serving it still runs and the mount is live. */
    public boolean live() {
      Path mp = Path.of(mountpoint);
      try {
        return new Owner(pid, start).alive()
            && MountTable.fuseMountAt(mp) != null
            && !MountTable.isStale(mp);
      } catch (IOException e) {
        return false;
      }
    }
  }

  private MountRegistry() {}

  /** The registry's directory in a home. */
  public static Path dir(Path home) {
    return home.resolve("run").resolve("mounts");
  }

  /** Announces {@code m} to the other processes of {@code home}. */
  public static void register(Path home, ImageMount m) throws IOException {
    Path dir = Files.createDirectories(dir(home));
    Owner me = Owner.current();
    Entry e =
        new Entry(
            me.pid(),
            me.start(),
            m.ref().toString(),
            m.digest().toString(),
            m.mountpoint().toString(),
            m.configJson());
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
      Files.deleteIfExists(dir(home).resolve(entryName(m)));
    } catch (IOException e) {
      LOG.debug("unregistering {}: {}", m.mountpoint(), e.toString());
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
  public static Optional<Entry> find(Path home, Digest digest) throws IOException {
    for (Entry e : entries(home)) {
      if (e.digest().equals(digest.toString()) && e.live()) {
        return Optional.of(e);
      }
    }
    return Optional.empty();
  }

  private static List<Entry> entries(Path home) throws IOException {
    Path dir = dir(home);
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

  /** Removes the entries of processes that are gone; returns how many. */
  public static int reap(Path home) throws IOException {
    int n = 0;
    Path dir = dir(home);
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : s.filter(p -> p.toString().endsWith(".json")).toList()) {
        Entry e;
        try {
          e = JSON.readValue(p.toFile(), Entry.class);
        } catch (IOException bad) {
          continue;
        }
        if (!new Owner(e.pid(), e.start()).alive()) {
          Files.deleteIfExists(p);
          n++;
        }
      }
    }
    return n;
  }
}
