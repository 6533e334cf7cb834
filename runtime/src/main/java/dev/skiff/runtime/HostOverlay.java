package dev.skiff.runtime;

import dev.skiff.casfs.fuse.MountTable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A kernel overlayfs on the host: the read-only casfs mount below, a small upper directory above.
 * Only bind-mount targets missing from the image are ever written to it (by runsc's gofer);
 * everything the sandbox writes goes to gVisor's own overlay.
 */
final class HostOverlay {
  private HostOverlay() {}

  static void mount(Path lower, Path upper, Path work, Path target) throws IOException {
    Files.createDirectories(upper);
    Files.createDirectories(work);
    Files.createDirectories(target);
    Runsc.Result r =
        Runsc.run(
            List.of(
                "mount",
                "-t",
                "overlay",
                "overlay",
                "-o",
                "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work,
                target.toString()),
            Duration.ofSeconds(30));
    if (r.exit() != 0) {
      throw new IOException(
          "overlayfs over " + lower + " at " + target + ": " + r.output().strip());
    }
  }

  static boolean isMounted(Path target) throws IOException {
    Path abs = target.toAbsolutePath().normalize();
    return MountTable.read().stream()
        .anyMatch(e -> e.mountpoint().equals(abs) && e.fsType().equals("overlay"));
  }

  static void unmount(Path target) throws IOException {
    Runsc.Result r = Runsc.run(List.of("umount", "-l", target.toString()), Duration.ofSeconds(30));
    if (r.exit() != 0) {
      throw new IOException("umount " + target + ": " + r.output().strip());
    }
  }
}
