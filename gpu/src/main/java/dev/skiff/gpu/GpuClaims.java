package dev.skiff.gpu;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Which GPUs of this host are in use, so that two sandboxes never get the same one: each GPU given
 * to a sandbox is claimed by a lock on {@code DIR/UUID.lock}, held for as long as the sandbox runs
 * and released by closing the claim. The kernel releases a killed process's locks, so a crash
 * leaves nothing claimed (no reconciliation to get wrong), and {@code skiff run --gpu} and a worker
 * daemon on one host share the same claims.
 */
public final class GpuClaims {
  /**
   * The lock files this process holds. A second descriptor of one of them must never be opened
   * here: closing it would drop the process's lock (fcntl locks belong to the process, and any
   * close of the file releases them), so a claim this process holds is known from this set.
   */
  private static final Set<Path> HELD = ConcurrentHashMap.newKeySet();

  private final Path dir;

  public GpuClaims(Path dir) {
    this.dir = dir;
  }

  /** The claims of everything that uses the Skiff home {@code home} (its {@code gpus/claims}). */
  public static GpuClaims of(Path home) {
    return new GpuClaims(home.resolve("gpus").resolve("claims"));
  }

  /** GPUs claimed together; closing releases them all. */
  public static final class Claim implements AutoCloseable {
    private final List<Gpu> gpus;
    private final List<FileChannel> channels;
    private final List<Path> files;

    private Claim(List<Gpu> gpus, List<FileChannel> channels, List<Path> files) {
      this.gpus = List.copyOf(gpus);
      this.channels = channels;
      this.files = files;
    }

    public List<Gpu> gpus() {
      return gpus;
    }

    @Override
    public void close() {
      for (FileChannel c : channels) {
        try {
          c.close(); // releases its lock
        } catch (IOException e) {
          // the lock goes with the descriptor either way
        }
      }
      channels.clear();
      files.forEach(HELD::remove);
      files.clear();
    }
  }

  /**
   * Claims {@code count} of {@code candidates} (in their order) that nobody holds, or none at all
   * if there are not that many free.
   */
  public Optional<Claim> claim(List<Gpu> candidates, int count) throws IOException {
    return claim(candidates, count, "pid " + ProcessHandle.current().pid());
  }

  /**
   * {@link #claim(List, int)}, saying who holds them ({@code holder}: "container ab12 of app/f"),
   * which {@link #holder} reads back.
   */
  public Optional<Claim> claim(List<Gpu> candidates, int count, String holder) throws IOException {
    Files.createDirectories(dir);
    List<Gpu> got = new ArrayList<>();
    List<FileChannel> held = new ArrayList<>();
    List<Path> files = new ArrayList<>();
    for (Gpu g : candidates) {
      if (got.size() == count) {
        break;
      }
      Path file = dir.resolve(g.uuid().replaceAll("[^A-Za-z0-9-]", "_") + ".lock").toAbsolutePath();
      if (!HELD.add(file)) {
        continue; // this process holds it
      }
      FileChannel c = null;
      try {
        c = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        if (c.tryLock() == null) {
          c.close(); // another process holds it
          HELD.remove(file);
          continue;
        }
        c.truncate(0);
        c.write(java.nio.ByteBuffer.wrap(holder.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
      } catch (IOException | RuntimeException e) {
        if (c != null) {
          c.close();
        }
        HELD.remove(file);
        new Claim(got, held, files).close();
        throw e;
      }
      got.add(g);
      held.add(c);
      files.add(file);
    }
    Claim claim = new Claim(got, held, files);
    if (got.size() < count) {
      claim.close();
      return Optional.empty();
    }
    return Optional.of(claim);
  }

  /** Who holds {@code g} now, as its claim said; empty if nobody does. */
  public Optional<String> holder(Gpu g) throws IOException {
    if (!inUse(g)) {
      return Optional.empty();
    }
    Path file = dir.resolve(g.uuid().replaceAll("[^A-Za-z0-9-]", "_") + ".lock");
    try {
      return Optional.of(Files.readString(file).strip());
    } catch (java.nio.file.NoSuchFileException gone) {
      return Optional.empty();
    }
  }

  /** Whether {@code g} is claimed now, by this process or another. */
  public boolean inUse(Gpu g) throws IOException {
    Optional<Claim> c = claim(List.of(g), 1);
    c.ifPresent(Claim::close);
    return c.isEmpty();
  }
}
