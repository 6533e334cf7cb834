package dev.skiff.tools;

import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.Snapshot;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "restore",
    mixinStandardHelpOptions = true,
    description = {
      "Start a fresh sandbox from a memory snapshot (see skiff snapshot create).",
      "The snapshotted process goes on from its READY line, reading this stdin (with -i) and writing to this"
          + " terminal."
    })
final class RestoreCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Mixin RemoteOptions remote;

  @Mixin SandboxCliOptions sandbox;

  @Option(
      names = {"-i", "--interactive"},
      description = "pass this process's stdin to the restored process")
  boolean stdin;

  @Parameters(index = "0", paramLabel = "IMAGE")
  String image;

  @Parameters(index = "1", paramLabel = "NAME")
  String name;

  @Override
  public Integer call() throws Exception {
    if (sandbox.runtime.isDefault() && remote.isDefault()) {
      var handedOff =
          LocalDaemon.tryHandOff(
              store.home(),
              LocalDaemon.Request.of("restore", image, name, List.of(), stdin, sandbox));
      if (handedOff.isPresent()) {
        return handedOff.get();
      }
    }
    try (ImageStore s = ImageStore.open(store.home());
        SandboxRuntime rt = sandbox.open(s, remote, false)) {
      Snapshot snap = rt.snapshots().find(ImageSpec.parse(image), name);
      return RunCommand.runToExit(rt, rt.restore(snap, sandbox.options(), stdin), stdin);
    }
  }
}
