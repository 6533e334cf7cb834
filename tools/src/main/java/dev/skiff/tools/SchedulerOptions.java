package dev.skiff.tools;

import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.client.SchedulerAddress;
import java.io.IOException;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * How a client command reaches the scheduler: {@code --scheduler}, then {@code $SKIFF_SCHEDULER},
 * then a running {@code skiff serve} of the same home (see {@link SchedulerAddress}).
 */
final class SchedulerOptions {
  @Mixin SkiffCli.StoreOptions store;

  @Option(
      names = "--scheduler",
      paramLabel = "HOST:PORT[,HOST:PORT]",
      description =
          "the scheduler, or a leader and its standbys, the first that answers serving (default:"
              + " $SKIFF_SCHEDULER, else the skiff serve running on this home); its client token"
              + " from $SKIFF_TOKEN")
  String scheduler;

  ControlClient connect() throws IOException {
    SchedulerAddress a = SchedulerAddress.find(scheduler, store.home());
    return ControlClient.connect(a.target(), a.token(), a.ca());
  }
}
