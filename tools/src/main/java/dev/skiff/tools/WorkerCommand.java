package dev.skiff.tools;

import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.build.ImageBuilder;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.client.TokenFile;
import dev.skiff.scheduler.worker.Worker;
import io.grpc.ManagedChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "worker",
    mixinStandardHelpOptions = true,
    description = {
      "Run this host's worker daemon, which runs the containers the scheduler places on this host.",
      "It offers this host's CPUs, memory and GPUs, and attaches again whenever the scheduler goes away and comes back.",
      "The worker token comes from $SKIFF_WORKER_TOKEN or --token-file (the scheduler's tokens.json, or the token alone)."
    })
final class WorkerCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Mixin RemoteOptions remote;

  @Mixin RuntimeCliOptions runtime;

  @Mixin Daemons.WorkerOptions worker;

  @Option(
      names = "--scheduler",
      paramLabel = "HOST:PORT[,HOST:PORT]",
      description =
          "the scheduler, or a leader and its standbys, the first that answers serving (default:"
              + " $SKIFF_SCHEDULER)")
  String scheduler;

  @Option(names = "--token-file", paramLabel = "FILE", description = "where the worker token is")
  Path tokenFile;

  @Option(
      names = "--ca",
      paramLabel = "PEM",
      description = "the certificate to trust when the scheduler speaks TLS (default: $SKIFF_CA)")
  Path ca;

  @Override
  public Integer call() throws Exception {
    Path home = store.home();
    String target = scheduler != null ? scheduler : System.getenv("SKIFF_SCHEDULER");
    if (target == null || target.isBlank()) {
      throw new IllegalArgumentException(
          "name the scheduler with --scheduler HOST:PORT or $SKIFF_SCHEDULER");
    }
    String token = token(home);
    Path trust =
        ca != null
            ? ca
            : (System.getenv("SKIFF_CA") == null ? null : Path.of(System.getenv("SKIFF_CA")));
    ImageStore images = ImageStore.open(home);
    SandboxRuntime rt = null;
    ManagedChannel channel = null;
    Worker w = null;
    LocalDaemon daemon = null;
    BlobStore buildCache = null;
    try {
      rt = SandboxRuntime.open(images, runtime.config(remote, false));
      channel = ControlClient.channel(target, trust);
      Worker.Options o = worker.options(home, Daemons.hostName(), rt);
      ImageBuilder.SharedCache shared = worker.buildCache(remote, images);
      if (shared != null) {
        buildCache = shared.remote();
        o = o.withBuildCache(shared);
      }
      w = Worker.start(images, rt, channel, token, o);
      daemon = LocalDaemon.start(home, rt); // skiff run and restore of this home use rt
      try {
        w.attached().get(10, TimeUnit.SECONDS);
        System.out.printf("skiff worker %s: attached to %s%n", o.id(), target);
      } catch (java.util.concurrent.TimeoutException e) {
        System.err.printf("skiff worker %s: %s does not answer yet; trying on%n", o.id(), target);
      }
      System.out.flush();
    } catch (Exception e) {
      Daemons.closeAll(
          daemon, w, channel == null ? null : channel::shutdownNow, rt, buildCache, images);
      throw e;
    }
    LocalDaemon d = daemon;
    Worker wk = w;
    ManagedChannel ch = channel;
    SandboxRuntime r = rt;
    BlobStore cache = buildCache;
    Daemons.runUntilStopped(() -> Daemons.closeAll(d, wk, ch::shutdownNow, r, cache, images));
    return 0;
  }

  private String token(Path home) throws java.io.IOException {
    String env = System.getenv("SKIFF_WORKER_TOKEN");
    if (env != null && !env.isBlank()) {
      return env.trim();
    }
    Path f = tokenFile != null ? tokenFile : TokenFile.path(home);
    if (!Files.isReadable(f)) {
      throw new IllegalArgumentException(
          "no worker token: set $SKIFF_WORKER_TOKEN or --token-file (the scheduler keeps it in its"
              + " home's control/tokens.json)");
    }
    String text = Files.readString(f).trim();
    return text.startsWith("{") ? TokenFile.read(f).worker() : text;
  }
}
