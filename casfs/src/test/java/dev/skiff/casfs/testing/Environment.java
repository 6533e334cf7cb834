package dev.skiff.casfs.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Preconditions of tests that need a kernel feature or root. Elsewhere they are skipped with a
 * message saying what is missing; with {@code SKIFF_REQUIRE_FUSE=1} (set by tools/test when it runs
 * as root, so in CI) a missing precondition fails the test instead of skipping it.
 */
public final class Environment {
  private Environment() {}

  private static void require(boolean ok, String what) {
    if (!ok && "1".equals(System.getenv("SKIFF_REQUIRE_FUSE"))) {
      throw new AssertionError("SKIFF_REQUIRE_FUSE=1 but " + what);
    }
    assumeTrue(ok, "skipped: " + what);
  }

  public static boolean isRoot() {
    return "root".equals(System.getProperty("user.name"));
  }

  public static boolean onPath(String tool) {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (Files.isExecutable(Path.of(dir, tool))) {
        return true;
      }
    }
    return false;
  }

  /** Root, for {@code why} (mounting a tmpfs, say). */
  public static void requireRoot(String why) {
    require(isRoot(), "needs root " + why + " (run as root, as CI does)");
  }

  /** Root and a usable /dev/fuse with libfuse3. */
  public static void requireFuse() {
    require(
        isRoot(),
        "needs root to mount FUSE with allow_other and device nodes (run as root, as CI does)");
    require(Files.exists(Path.of("/dev/fuse")), "needs /dev/fuse");
    require(
        Files.exists(Path.of("/usr/bin/fusermount3")),
        "needs fuse3 (apt-get install fuse3 libfuse3-3)");
  }

  /** FUSE and gVisor's runsc (on the PATH or in $SKIFF_RUNSC). */
  public static void requireRunsc() {
    requireFuse();
    String env = System.getenv("SKIFF_RUNSC");
    require(
        onPath("runsc") || (env != null && Files.isExecutable(Path.of(env))),
        "needs gVisor's runsc (apt-get install -t bookworm-backports runsc, or plain runsc)");
  }

  /** gVisor, and debootstrap for Debian bases made from this host's apt mirror. */
  public static void requireDebootstrap() {
    requireRunsc();
    require(
        onPath("debootstrap") || Files.isExecutable(Path.of("/usr/sbin/debootstrap")),
        "needs debootstrap (apt-get install debootstrap)");
  }

  /** What make-image.sh needs on top of FUSE. */
  public static void requireImageTools() {
    requireFuse();
    for (String t : new String[] {"umoci", "skopeo", "python3", "setfattr", "tar"}) {
      require(onPath(t), "needs " + t + " (apt-get install umoci skopeo python3 attr tar)");
    }
  }
}
