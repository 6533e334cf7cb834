package dev.skiff.tools;

import dev.skiff.casfs.fuse.MountTable;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

@Command(
    name = "umount",
    mixinStandardHelpOptions = true,
    description = "Unmount a Skiff mount (live or left behind by a killed process).")
final class UmountCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "MOUNTPOINT")
  Path mountpoint;

  @Override
  public Integer call() throws Exception {
    Path mp = mountpoint.toAbsolutePath().normalize();
    if (MountTable.fuseMountAt(mp) == null) {
      throw new IllegalArgumentException(mp + " is not a FUSE mount");
    }
    MountTable.unmount(mp);
    System.out.println("unmounted " + mp);
    return 0;
  }
}
