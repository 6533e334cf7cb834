package dev.skiff.tools;

import dev.skiff.casfs.ImageStore;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.client.SchedulerAddress;
import dev.skiff.scheduler.client.TokenFile;
import dev.skiff.scheduler.control.SchedulerServer;
import dev.skiff.scheduler.state.ControlState;
import dev.skiff.scheduler.worker.Worker;
import io.grpc.ManagedChannel;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "serve",
    mixinStandardHelpOptions = true,
    description = {
      "Run the platform on this host: a scheduler with embedded state and one worker, in one process.",
      "Prints the address and the client token, and writes both to HOME/serve.json (readable by its owner only),",
      "where skiff function, skiff logs and the other client commands of the same home find them. Ctrl-C stops it."
    })
final class ServeCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Mixin RemoteOptions remote;

  @Mixin RuntimeCliOptions runtime;

  @Mixin Daemons.WorkerOptions worker;

  @Option(
      names = "--listen",
      defaultValue = "127.0.0.1:7420",
      paramLabel = "HOST:PORT",
      description =
          "where clients and other workers connect (port 0: any free one; default ${DEFAULT-VALUE})")
  String listen;

  @Override
  public Integer call() throws Exception {
    Path home = store.home();
    TokenFile tokens = TokenFile.loadOrCreate(home);
    ControlState state = Daemons.openState(null, home);
    SchedulerServer server = null;
    ImageStore images = null;
    SandboxRuntime rt = null;
    ManagedChannel channel = null;
    Worker w = null;
    LocalDaemon daemon = null;
    dev.skiff.casfs.store.BlobStore buildCache = null;
    try {
      server =
          SchedulerServer.start(
              state,
              new SchedulerServer.Options(
                  Daemons.address(listen),
                  tokens.client(),
                  tokens.worker(),
                  null,
                  null,
                  Daemons.data(null, home)));
      String host = listen.substring(0, listen.lastIndexOf(':'));
      String target = (host.equals("0.0.0.0") ? "127.0.0.1" : host) + ":" + server.port();
      images = ImageStore.open(home);
      rt = SandboxRuntime.open(images, runtime.config(remote, false));
      channel = ControlClient.channel(target, null);
      Worker.Options wo = worker.options(home, "local", rt);
      var shared = worker.buildCache(remote, images);
      if (shared != null) {
        buildCache = shared.remote();
        wo = wo.withBuildCache(shared);
      }
      w = Worker.start(images, rt, channel, tokens.worker(), wo);
      w.attached().get(30, TimeUnit.SECONDS);
      daemon = LocalDaemon.start(home, rt); // skiff run and restore of this home use rt
      SchedulerAddress.writeServeFile(home, target, tokens.client());
      System.out.printf(
          "skiff serve: scheduler on %s, worker %s attached (%.0f CPUs, %s, GPUs: %s)%n",
          target,
          wo.id(),
          wo.cpus(),
          Human.bytes(wo.memoryBytes()),
          wo.gpus().isEmpty() ? "none" : String.join(",", wo.gpus()));
      System.out.println("client token: " + tokens.client());
      System.out.println(
          "(in "
              + SchedulerAddress.serveFile(home)
              + "; worker token in "
              + TokenFile.path(home)
              + ")");
      System.out.flush();
    } catch (Exception e) {
      Daemons.closeAll(
          daemon,
          w,
          channel == null ? null : channel::shutdownNow,
          rt,
          buildCache,
          images,
          server,
          state);
      throw e;
    }
    SchedulerServer s = server;
    ImageStore i = images;
    SandboxRuntime r = rt;
    ManagedChannel ch = channel;
    Worker wk = w;
    LocalDaemon d = daemon;
    dev.skiff.casfs.store.BlobStore cache = buildCache;
    Daemons.runUntilStopped(
        () -> {
          SchedulerAddress.removeServeFile(home);
          Daemons.closeAll(d, wk, ch::shutdownNow, s, r, cache, i, state);
        });
    return 0;
  }
}
