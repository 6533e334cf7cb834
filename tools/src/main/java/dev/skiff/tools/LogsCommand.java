package dev.skiff.tools;

import dev.skiff.scheduler.client.ControlClient;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "logs",
    mixinStandardHelpOptions = true,
    description = {
      "Print what a function's containers, or one call, printed (the scheduler keeps the latest lines in memory).",
      "A function's lines start with their call; --follow keeps printing new lines (for a call, until it ends)."
    })
final class LogsCommand implements Callable<Integer> {
  @Mixin SchedulerOptions scheduler;

  @Parameters(index = "0", paramLabel = "APP/NAME|CALL_ID")
  String what;

  @Option(
      names = {"-f", "--follow"},
      description = "keep printing lines as they come")
  boolean follow;

  @Override
  public Integer call() throws Exception {
    boolean call = !what.contains("/");
    try (ControlClient c = scheduler.connect()) {
      c.logs(
          call ? null : what,
          call ? what : null,
          follow,
          l -> {
            if (call) {
              System.out.println(l.getLine());
            } else {
              System.out.println(
                  (l.getCallId().isEmpty() ? "-" : l.getCallId()) + " " + l.getLine());
            }
            if (follow) {
              System.out.flush();
            }
          });
    }
    return 0;
  }
}
