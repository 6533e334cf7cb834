package dev.skiff.tools;

import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.Status;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "call",
    mixinStandardHelpOptions = true,
    description = "Results of calls started with skiff function spawn, and cancelling them.",
    subcommands = {CallCommand.Get.class, CallCommand.Cancel.class})
final class CallCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  @Command(
      name = "get",
      mixinStandardHelpOptions = true,
      description = {
        "Wait for a call's result and print it, as skiff function call does.",
        "If it is not done within --timeout, print its state and exit 75."
      })
  static final class Get implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Parameters(index = "0", paramLabel = "CALL_ID")
    String id;

    @Option(
        names = "--timeout",
        defaultValue = "1h",
        paramLabel = "DURATION",
        description = "how long to wait (0: not at all; default ${DEFAULT-VALUE})")
    String timeout;

    @Override
    public Integer call() throws Exception {
      try (ControlClient c = scheduler.connect()) {
        Result r = c.get(id, RemoteOptions.duration(timeout));
        if (r.getStatus() == Status.PENDING || r.getStatus() == Status.RUNNING) {
          System.err.println("skiff call get: " + id + " is " + Inputs.describe(r.getStatus()));
          return 75;
        }
        return FunctionCommand.finish(r);
      }
    }
  }

  @Command(
      name = "cancel",
      mixinStandardHelpOptions = true,
      description = "Cancel a call that has not finished.")
  static final class Cancel implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Parameters(index = "0", paramLabel = "CALL_ID")
    String id;

    @Option(
        names = "--terminate",
        description =
            "also stop the container running it (other calls on it are retried elsewhere)")
    boolean terminate;

    @Override
    public Integer call() throws Exception {
      try (ControlClient c = scheduler.connect()) {
        if (!c.cancel(id, terminate)) {
          System.err.println("skiff call cancel: " + id + " had already finished");
          return 1;
        }
        System.out.println("cancelled " + id);
      }
      return 0;
    }
  }
}
