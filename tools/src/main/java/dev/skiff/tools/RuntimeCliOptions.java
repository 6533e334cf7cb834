package dev.skiff.tools;

import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.tracer.TraceHook;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** How the gVisor runtime runs: for every command that starts sandboxes, the worker included. */
final class RuntimeCliOptions {
  @Option(
      names = "--platform",
      defaultValue = "auto",
      paramLabel = "NAME",
      description =
          "gVisor platform: auto (kvm where /dev/kvm works, else systrap, else ptrace), systrap, ptrace, kvm")
  String platform;

  @Option(
      names = "--runsc",
      paramLabel = "PATH",
      description = "runsc binary (default: $SKIFF_RUNSC, else the PATH)")
  Path runsc;

  @Option(names = "--no-prefetch", description = "do not replay the image's trace as prefetch")
  boolean noPrefetch;

  /** Whether no option was given (a daemon's own runtime would serve as well). */
  boolean isDefault() {
    return "auto".equals(platform) && runsc == null && !noPrefetch;
  }

  SandboxRuntime.Config config(RemoteOptions remote, boolean record) {
    return SandboxRuntime.Config.defaults()
        .withRunsc(runsc)
        .withPlatform(platform)
        .withRemotes(remote)
        .withTrace(TraceHook.Options.defaults().withPrefetch(!noPrefetch).withRecord(record))
        .withListener(Events.toStderr());
  }
}
