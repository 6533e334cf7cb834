package dev.skiff.runtime;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The sandboxes of one Skiff home, whoever runs them: a state directory per sandbox under {@code
 * HOME/run/sandboxes/ID/} whose record ({@link SandboxRecord}) names the process that owns it.
 * Lists them ({@code skiff ps}), kills them, and cleans those whose owner is gone. Opening it needs
 * no runsc; runsc is located on the first call that has to ask it something (state, kill, delete).
 *
 * <p>Thread safe.
 */
public final class SandboxRegistry {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Pattern STATUS = Pattern.compile("\"status\":\\s*\"(\\w+)\"");

  /** Finds runsc when it is first needed. */
  @FunctionalInterface
  public interface RunscSource {
    Runsc get() throws IOException;
  }

  /** What {@code skiff ps} shows of one sandbox: its record and runsc's view of its state. */
  public record Info(SandboxRecord record, String status) {}

  private final Path home;
  private final Path dir;
  private final RunscSource runscSource;
  private Runsc runsc;

  SandboxRegistry(Path home, RunscSource runsc) throws IOException {
    this.home = home;
    this.dir = Files.createDirectories(home.resolve("run").resolve("sandboxes"));
    this.runscSource = runsc;
  }

  /**
   * The registry of {@code home}; runsc ({@code runscBinary}, or found as a runtime finds it) is
   * located on first use.
   */
  public static SandboxRegistry open(Path home, Path runscBinary) throws IOException {
    return new SandboxRegistry(
        home, () -> Runsc.locate(runscBinary, home.resolve("run").resolve("runsc"), "ptrace"));
  }

  synchronized Runsc runsc() throws IOException {
    if (runsc == null) {
      runsc = runscSource.get();
    }
    return runsc;
  }

  /** A new sandbox id. */
  static String newId() {
    byte[] b = new byte[6];
    RANDOM.nextBytes(b);
    return "sb-" + HexFormat.of().formatHex(b);
  }

  /** The state directory of sandbox {@code id}. */
  Path dir(String id) {
    return dir.resolve(id);
  }

  /** Every sandbox of this home, whoever owns it, with runsc's view of its state. */
  public List<Info> list() throws IOException {
    List<Info> out = new ArrayList<>();
    for (Path d : dirs()) {
      Optional<SandboxRecord> r = SandboxRecord.read(d);
      if (r.isPresent()) {
        out.add(new Info(r.get(), r.get().ownerAlive() ? state(r.get().id()) : "orphaned"));
      }
    }
    out.sort((a, b) -> a.record().created().compareTo(b.record().created()));
    return out;
  }

  private String state(String id) {
    try {
      Runsc.Result r = Runsc.run(runsc().plain(underRunc(id), "state", id), Duration.ofSeconds(10));
      if (r.exit() != 0) {
        return "starting";
      }
      Matcher m = STATUS.matcher(r.output());
      return m.find() ? m.group(1) : "unknown";
    } catch (IOException e) {
      return "unknown";
    }
  }

  /**
   * Kills a sandbox by id: its owner (a {@code skiff run}, say) sees its process die and cleans up;
   * a sandbox whose owner is gone is cleaned here. Returns false if there is no such sandbox.
   */
  public boolean kill(String id) throws IOException {
    Optional<SandboxRecord> r =
        id.matches("[a-z0-9-]+") ? SandboxRecord.read(dir(id)) : Optional.empty();
    if (r.isEmpty()) {
      return false;
    }
    if (!r.get().ownerAlive()) {
      clean(dir(id), false);
      return true;
    }
    Runsc.run(runsc().plain(underRunc(id), "kill", "--all", id, "KILL"), Duration.ofSeconds(10));
    return true;
  }

  /**
   * Cleans every sandbox whose owner is gone, and the mounts of runtimes that are gone; returns
   * what it cleaned.
   */
  public List<RuntimeEvent> reap() throws IOException {
    List<RuntimeEvent> done = new ArrayList<>();
    for (Path d : dirs()) {
      Optional<SandboxRecord> r = SandboxRecord.read(d);
      if (r.isPresent() && r.get().ownerAlive()) {
        continue;
      }
      if (r.isEmpty()
          && Files.getLastModifiedTime(d).toMillis() > System.currentTimeMillis() - 60_000) {
        continue; // being created right now by another process (the record comes first, within ms)
      }
      clean(d, false);
      done.add(
          r.<RuntimeEvent>map(
                  x -> new RuntimeEvent.OrphanCleaned(x.id(), x.image(), x.command(), x.ownerPid()))
              .orElse(new RuntimeEvent.LeftoverCleaned(d, "a sandbox directory without a record")));
    }
    done.addAll(MountPool.reap(home));
    return done;
  }

  /** A file in a sandbox's directory that says it runs under runc, not gVisor. */
  static final String RUNC_MARK = "runc";

  private boolean underRunc(String id) {
    return Files.exists(dir(id).resolve(RUNC_MARK));
  }

  /** How many state directories there are (for soak measurements). */
  public int size() throws IOException {
    return dirs().size();
  }

  private List<Path> dirs() throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(Files::isDirectory).sorted().toList();
    }
  }

  /**
   * Deletes a sandbox in runsc, unmounts its root overlay and its read-only binds, drops its
   * cgroups and removes its directory, going on past a failing step (the first failure is thrown at
   * the end); a directory where something stays mounted is left in place. With {@code
   * deleteInBackground} the runsc delete is started and not waited for (it is returned, to be
   * waited for later): for a sandbox whose processes are dead, where runsc delete waits 1-2 s for
   * its gofer to be gone and nothing needs that wait.
   */
  Process clean(Path sandboxDir, boolean deleteInBackground) throws IOException {
    String id = sandboxDir.getFileName().toString();
    IOException first = null;
    Process delete = null;
    try {
      if (deleteInBackground) {
        delete =
            new ProcessBuilder(runsc().plain(underRunc(id), "delete", "--force", id))
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
      } else {
        Runsc.run(runsc().plain(underRunc(id), "delete", "--force", id), Duration.ofSeconds(30));
      }
    } catch (IOException e) {
      first = e;
    }
    Path rootfs = sandboxDir.resolve("bundle").resolve("rootfs");
    try {
      if (HostOverlay.isMounted(rootfs)) {
        HostOverlay.unmount(rootfs);
      }
    } catch (IOException e) {
      first = first == null ? e : first;
    }
    Cgroups.remove(id);
    try {
      // Read-only binds, and whatever else is still mounted in the directory: rm would go into
      // them.
      ReadOnlyBinds.detachUnder(sandboxDir);
      Runsc.run(
          List.of("rm", "-rf", "--one-file-system", sandboxDir.toString()), Duration.ofSeconds(30));
    } catch (IOException e) {
      first = first == null ? e : first;
    }
    if (first != null) {
      throw first;
    }
    return delete;
  }
}
