package dev.skiff.tools;

import dev.skiff.casfs.ImageStore;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxRuntime;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The options of every command that starts a sandbox: run, snapshot create, restore. */
final class SandboxCliOptions {
  @Option(
      names = {"-e", "--env"},
      paramLabel = "NAME=VALUE",
      description = "set an environment variable (repeatable)")
  List<String> env = new ArrayList<>();

  @Option(
      names = {"-w", "--workdir"},
      paramLabel = "DIR",
      description = "working directory (default: the image's)")
  String workdir;

  @Option(
      names = {"-u", "--user"},
      paramLabel = "USER[:GROUP]",
      description =
          "user to run as: ids, or names from the image's /etc/passwd (default: the image's)")
  String user;

  @Option(
      names = {"-v", "--volume"},
      paramLabel = "HOST:SANDBOX[:ro]",
      description = "bind a host directory or file into the sandbox (repeatable)")
  List<String> volumes = new ArrayList<>();

  @Option(
      names = "--timeout",
      paramLabel = "DURATION",
      description = "kill the sandbox after this long (500ms, 30s, 2m); exit code 124")
  String timeout;

  @Option(
      names = "--memory",
      paramLabel = "SIZE",
      description = "memory limit (512M, 1G), where cgroups allow")
  String memory;

  @Option(
      names = "--cpus",
      paramLabel = "N",
      description = "CPU limit in cores (0.5, 2), where cgroups allow")
  double cpus;

  @Option(
      names = "--network",
      description = "give the sandbox the host's network (default: no network at all)")
  boolean network;

  @Option(
      names = "--scratch",
      paramLabel = "DIR",
      description =
          "keep writes to the root filesystem in a file under DIR instead of memory (gone with the sandbox)")
  Path scratch;

  @Mixin RuntimeCliOptions runtime;

  SandboxOptions options() {
    SandboxOptions.Builder b =
        SandboxOptions.builder()
            .workdir(workdir)
            .user(user)
            .network(network)
            .scratch(scratch)
            .cpus(cpus);
    env.forEach(b::env);
    volumes.forEach(v -> b.volume(SandboxOptions.Volume.parse(v)));
    if (timeout != null) {
      b.timeout(RemoteOptions.duration(timeout));
    }
    if (memory != null) {
      b.memory(dev.skiff.api.Resources.parseBytes(memory));
    }
    return b.build();
  }

  SandboxRuntime open(ImageStore store, RemoteOptions remote, boolean record) throws IOException {
    return SandboxRuntime.open(store, runtime.config(remote, record));
  }
}
