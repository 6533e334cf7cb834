package dev.skiff.runtime;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Whether this host lets runsc put a sandbox in a cgroup of its own with memory and CPU limits
 * (cgroup v1 or v2, writable by us). Where it does not (an unprivileged container, a read-only
 * cgroupfs), limits are reported as not enforced rather than silently dropped.
 */
final class Cgroups {
  private static final Path FS = Path.of("/sys/fs/cgroup");
  private final boolean memory;
  private final boolean cpu;
  private final String why;

  private Cgroups(boolean memory, boolean cpu, String why) {
    this.memory = memory;
    this.cpu = cpu;
    this.why = why;
  }

  static Cgroups detect() {
    if (Files.exists(FS.resolve("cgroup.controllers"))) {
      String controllers;
      try {
        controllers = Files.readString(FS.resolve("cgroup.controllers"));
      } catch (IOException e) {
        return new Cgroups(false, false, "cgroup v2 controllers unreadable: " + e.getMessage());
      }
      boolean w = canCreate(FS);
      return new Cgroups(
          w && controllers.contains("memory"),
          w && controllers.contains("cpu"),
          w ? "cgroup v2 lacks the controller" : "cgroup v2 is not writable here");
    }
    boolean mem = Files.isDirectory(FS.resolve("memory")) && canCreate(FS.resolve("memory"));
    boolean cpu = Files.isDirectory(FS.resolve("cpu")) && canCreate(FS.resolve("cpu"));
    return new Cgroups(mem, cpu, "cgroup v1 memory/cpu hierarchy missing or not writable here");
  }

  private static boolean canCreate(Path hierarchy) {
    Path probe = hierarchy.resolve("skiff-probe-" + ProcessHandle.current().pid());
    try {
      Files.createDirectory(probe);
      Files.delete(probe);
      return true;
    } catch (IOException | UnsupportedOperationException e) {
      return false;
    }
  }

  boolean memory() {
    return memory;
  }

  boolean cpu() {
    return cpu;
  }

  /** Why a limit cannot be applied. */
  String why() {
    return why;
  }

  /** The cgroup path runsc creates for a sandbox. */
  static String path(String id) {
    return "/skiff/" + id;
  }

  /**
   * How many processes of sandbox {@code id} the kernel killed for its memory limit (cgroup v2's
   * {@code memory.events oom_kill}, v1's {@code memory.oom_control}); 0 where it cannot say.
   */
  static long oomKills(String id) {
    for (Path f :
        List.of(
            FS.resolve("skiff").resolve(id).resolve("memory.events"),
            FS.resolve("memory").resolve("skiff").resolve(id).resolve("memory.oom_control"))) {
      try {
        for (String line : Files.readAllLines(f)) {
          if (line.startsWith("oom_kill ")) {
            return Long.parseLong(line.substring("oom_kill ".length()).trim());
          }
        }
      } catch (IOException | NumberFormatException e) {
        // not this hierarchy, or gone
      }
    }
    return 0;
  }

  /**
   * Makes sandbox {@code id}'s memory cgroup, with its limit, before runsc starts it. runsc removes
   * the cgroups it makes when the sandbox ends, and with them the count of what the kernel killed
   * for memory; a cgroup made here outlives the sandbox, so {@link #oomKills} can still read it
   * ({@link #remove} cleans it with the sandbox). runsc joins a cgroup that exists and configures
   * nothing in it: on cgroup v2, where one directory holds every controller, the CPU limit is
   * written here too.
   */
  static void prepareMemory(String id, long memoryBytes, double cpus) throws IOException {
    if (Files.exists(FS.resolve("cgroup.controllers"))) {
      Path parent = FS.resolve("skiff");
      Files.createDirectories(parent);
      enable(FS, "+memory +cpu");
      enable(parent, "+memory +cpu");
      Path dir = Files.createDirectories(parent.resolve(id));
      Files.writeString(dir.resolve("memory.max"), Long.toString(memoryBytes));
      if (cpus > 0) {
        Files.writeString(
            dir.resolve("cpu.max"), Math.max(1000, Math.round(cpus * 100_000)) + " 100000");
      }
    } else {
      Path dir = Files.createDirectories(FS.resolve("memory").resolve("skiff").resolve(id));
      Files.writeString(dir.resolve("memory.limit_in_bytes"), Long.toString(memoryBytes));
    }
  }

  private static void enable(Path cgroup, String controllers) {
    try {
      Files.writeString(cgroup.resolve("cgroup.subtree_control"), controllers);
    } catch (IOException e) {
      // enabled already, or not ours to change: the limit write says if it matters
    }
  }

  /** Removes a sandbox's cgroups if runsc left them (only empty ones can go). */
  static void remove(String id) {
    for (String h : List.of("memory", "cpu", "cpuacct", "pids", "")) {
      Path dir = (h.isEmpty() ? FS : FS.resolve(h)).resolve("skiff").resolve(id);
      try {
        Files.deleteIfExists(dir);
      } catch (IOException ignored) {
        // not ours, not empty, or already gone
      }
    }
  }
}
