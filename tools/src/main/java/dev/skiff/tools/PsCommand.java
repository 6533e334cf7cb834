package dev.skiff.tools;

import dev.skiff.casfs.ImageStore;
import dev.skiff.runtime.SandboxRecord;
import dev.skiff.runtime.SandboxRegistry;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "ps",
    mixinStandardHelpOptions = true,
    description =
        "List the sandboxes of this Skiff home (cleaning up any whose owning process is gone).")
final class PsCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Option(
      names = "--runsc",
      paramLabel = "PATH",
      description = "runsc binary (default: $SKIFF_RUNSC, else the PATH)")
  java.nio.file.Path runsc;

  @Override
  public Integer call() throws Exception {
    try (ImageStore s = ImageStore.open(store.home())) {
      SandboxRegistry sandboxes = SandboxRegistry.open(s.home(), runsc);
      sandboxes.reap().forEach(Events.toStderr()::event);
      System.out.printf(
          "%-15s %-20s %-8s %-7s %-8s %-24s %s%n",
          "ID", "IMAGE", "KIND", "STATUS", "OWNER", "CREATED", "COMMAND");
      for (SandboxRegistry.Info i : sandboxes.list()) {
        SandboxRecord r = i.record();
        System.out.printf(
            "%-15s %-20s %-8s %-7s %-8d %-24s %s%n",
            r.id(),
            r.image(),
            r.kind(),
            i.status(),
            r.ownerPid(),
            r.created(),
            String.join(" ", r.command()));
      }
    }
    return 0;
  }
}
