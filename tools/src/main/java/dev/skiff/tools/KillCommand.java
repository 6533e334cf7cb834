package dev.skiff.tools;

import dev.skiff.casfs.ImageStore;
import dev.skiff.runtime.SandboxRegistry;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "kill",
    mixinStandardHelpOptions = true,
    description =
        "Kill sandboxes by id (see skiff ps): every process in them gets SIGKILL; their owner cleans up.")
final class KillCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Option(
      names = "--runsc",
      paramLabel = "PATH",
      description = "runsc binary (default: $SKIFF_RUNSC, else the PATH)")
  java.nio.file.Path runsc;

  @Parameters(arity = "1..*", paramLabel = "ID")
  List<String> ids;

  @Override
  public Integer call() throws Exception {
    int missing = 0;
    try (ImageStore s = ImageStore.open(store.home())) {
      SandboxRegistry sandboxes = SandboxRegistry.open(s.home(), runsc);
      sandboxes.reap().forEach(Events.toStderr()::event);
      for (String id : ids) {
        if (sandboxes.kill(id)) {
          System.out.println("killed " + id);
        } else {
          System.err.println("skiff kill: no sandbox " + id + " (see skiff ps)");
          missing++;
        }
      }
    }
    return missing == 0 ? 0 : 1;
  }
}
