package dev.skiff.tools;

import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.proto.CallInfo;
import dev.skiff.scheduler.proto.ContainerInfo;
import dev.skiff.scheduler.proto.FunctionInfo;
import dev.skiff.scheduler.proto.WorkerInfo;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** What the scheduler knows, in tables: workers, containers, apps, functions, calls. */
final class PlatformLists {
  private static final DateTimeFormatter TIME =
      DateTimeFormatter.ofPattern("MM-dd HH:mm:ss").withZone(ZoneId.systemDefault());

  private PlatformLists() {}

  static String time(long ms) {
    return ms == 0 ? "-" : TIME.format(Instant.ofEpochMilli(ms));
  }

  static String ago(long ms) {
    long s = Math.max(0, (System.currentTimeMillis() - ms) / 1000);
    return s < 120 ? s + "s ago" : s / 60 + "m ago";
  }

  @Command(
      name = "workers",
      mixinStandardHelpOptions = true,
      description = "List the workers attached to the scheduler.")
  static final class Workers implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Override
    public Integer call() throws Exception {
      try (ControlClient c = scheduler.connect()) {
        System.out.printf(
            "%-20s %-11s %-19s %-22s %-10s %-9s %s%n",
            "WORKER", "CPUS", "MEMORY", "GPUS USED", "CONTAINERS", "SEEN", "IMAGES");
        for (WorkerInfo w : c.workers()) {
          // per type: used/all ("H100 1/2")
          Map<String, int[]> gpus = new TreeMap<>();
          for (int i = 0; i < w.getGpusCount(); i++) {
            int[] n = gpus.computeIfAbsent(w.getGpus(i), k -> new int[2]);
            n[1]++;
            if (w.getGpusUsedList().contains(i)) {
              n[0]++;
            }
          }
          StringBuilder g = new StringBuilder();
          gpus.forEach(
              (t, n) ->
                  g.append(g.isEmpty() ? "" : ",")
                      .append(t)
                      .append(' ')
                      .append(n[0])
                      .append('/')
                      .append(n[1]));
          System.out.printf(
              Locale.ROOT,
              "%-20s %-11s %-19s %-22s %-10d %-9s %s%n",
              w.getId(),
              String.format(Locale.ROOT, "%.1f/%.0f", w.getCpusUsed(), w.getCpus()),
              Human.bytes(w.getMemoryUsed()) + "/" + Human.bytes(w.getMemoryBytes()),
              g.isEmpty() ? "-" : g + (w.getGpusWithoutGvisor() ? " (runc)" : ""),
              w.getContainers(),
              ago(w.getLastSeenMs()),
              String.join(",", w.getImagesList()));
        }
      }
      return 0;
    }
  }

  @Command(
      name = "containers",
      mixinStandardHelpOptions = true,
      description = "List function containers: where they run and what they do.")
  static final class Containers implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Override
    public Integer call() throws Exception {
      try (ControlClient c = scheduler.connect()) {
        System.out.printf(
            "%-16s %-24s %-8s %-20s %-9s %-8s %-6s %-15s %s%n",
            "CONTAINER",
            "FUNCTION",
            "VERSION",
            "WORKER",
            "STATE",
            "RUNNING",
            "CALLS",
            "STARTED",
            "GPUS");
        for (ContainerInfo x : c.containers()) {
          System.out.printf(
              "%-16s %-24s %-8d %-20s %-9s %-8d %-6d %-15s %s%n",
              x.getId(),
              x.getFunctionId(),
              x.getVersion(),
              x.getWorkerId(),
              x.getState(),
              x.getRunning(),
              x.getCalls(),
              time(x.getStartedMs()),
              x.getGpusCount() == 0 ? "-" : gpus(x));
        }
      }
      return 0;
    }

    /** Its GPUs with what they do: "H100 42% 10.5/80 GiB 61C 300W", one after another. */
    static String gpus(ContainerInfo x) {
      List<String> out = new java.util.ArrayList<>();
      for (int i = 0; i < x.getGpusCount(); i++) {
        String g = x.getGpus(i);
        if (i < x.getGpuSamplesCount()) {
          var s = x.getGpuSamples(i);
          g +=
              String.format(
                  Locale.ROOT,
                  " %s %.1f/%.0f GiB %s %s",
                  s.getUtilisation() < 0 ? "?%" : s.getUtilisation() + "%",
                  s.getMemoryUsedMib() / 1024.0,
                  s.getMemoryMib() / 1024.0,
                  s.getTemperatureC() < 0 ? "?C" : s.getTemperatureC() + "C",
                  s.getPowerWatts() < 0 ? "?W" : Math.round(s.getPowerWatts()) + "W");
        }
        out.add(g);
      }
      return String.join(", ", out);
    }
  }

  @Command(
      name = "functions",
      mixinStandardHelpOptions = true,
      description = "List deployed functions (their latest versions) and their work.")
  static final class Functions implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Override
    public Integer call() throws Exception {
      try (ControlClient c = scheduler.connect()) {
        System.out.printf(
            "%-24s %-8s %-24s %-24s %-11s %-8s %-8s %s%n",
            "FUNCTION",
            "VERSION",
            "IMAGE",
            "HANDLER",
            "CONTAINERS",
            "RUNNING",
            "PENDING",
            "WAITING");
        for (FunctionInfo f : c.functions()) {
          var spec = f.getFunction().getSpec();
          System.out.printf(
              "%-24s %-8d %-24s %-24s %-11d %-8d %-8d %s%n",
              f.getFunction().getId(),
              f.getFunction().getVersion(),
              spec.getImage(),
              spec.getHandler(),
              f.getContainers(),
              f.getRunning(),
              f.getPending(),
              f.getWaiting().isEmpty() ? "-" : f.getWaiting());
        }
      }
      return 0;
    }
  }

  @Command(
      name = "apps",
      mixinStandardHelpOptions = true,
      description = "List apps: the functions deployed under each name.")
  static final class Apps implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Override
    public Integer call() throws Exception {
      try (ControlClient c = scheduler.connect()) {
        Map<String, int[]> apps = new TreeMap<>();
        for (FunctionInfo f : c.functions()) {
          int[] n = apps.computeIfAbsent(f.getFunction().getSpec().getApp(), k -> new int[3]);
          n[0]++;
          n[1] += f.getContainers();
          n[2] += f.getRunning() + f.getPending();
        }
        System.out.printf(
            "%-24s %-10s %-11s %s%n", "APP", "FUNCTIONS", "CONTAINERS", "CALLS IN FLIGHT");
        apps.forEach(
            (app, n) -> System.out.printf("%-24s %-10d %-11d %d%n", app, n[0], n[1], n[2]));
      }
      return 0;
    }
  }

  @Command(
      name = "calls",
      mixinStandardHelpOptions = true,
      description =
          "List the latest calls: their state, where they run, and why a pending one waits.")
  static final class Calls implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Parameters(
        index = "0",
        arity = "0..1",
        paramLabel = "APP/NAME",
        description = "only this function's calls")
    String function;

    @Option(
        names = {"-n", "--limit"},
        defaultValue = "20",
        description = "how many (default ${DEFAULT-VALUE})")
    int limit;

    @Override
    public Integer call() throws Exception {
      try (ControlClient c = scheduler.connect()) {
        System.out.printf(
            "%-30s %-24s %-17s %-9s %-20s %-15s %s%n",
            "CALL", "FUNCTION", "STATUS", "ATTEMPTS", "WORKER", "CREATED", "WAITING");
        for (CallInfo x : c.calls(limit, function)) {
          System.out.printf(
              "%-30s %-24s %-17s %-9s %-20s %-15s %s%n",
              x.getCallId(),
              x.getFunctionId() + (x.getVersion() > 0 ? "@" + x.getVersion() : ""),
              Inputs.describe(x.getStatus()),
              x.getAttempts()
                  + (x.getPlatformAttempts() > 0 ? "+" + x.getPlatformAttempts() + "p" : ""),
              x.getWorkerId().isEmpty() ? "-" : x.getWorkerId(),
              time(x.getCreatedMs()),
              x.getWaiting().isEmpty() ? "-" : x.getWaiting());
        }
      }
      return 0;
    }
  }
}
