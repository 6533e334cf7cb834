package dev.skiff.tools;

import dev.skiff.api.GpuRequest;
import dev.skiff.api.ImageSpec;
import dev.skiff.api.Resources;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.proto.Autoscaling;
import dev.skiff.scheduler.proto.DeployResponse;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.RetryPolicy;
import dev.skiff.scheduler.proto.Status;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "function",
    mixinStandardHelpOptions = true,
    description = "Deploy functions to the scheduler and call them.",
    subcommands = {
      FunctionCommand.Deploy.class,
      FunctionCommand.Call.class,
      FunctionCommand.MapInputs.class,
      FunctionCommand.Spawn.class
    })
final class FunctionCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  @Command(
      name = "deploy",
      mixinStandardHelpOptions = true,
      description = {
        "Deploy a Python function: its image, its handler (module:function) and its code directory.",
        "Deploying a function again makes a new version; containers of the old one finish their calls and stop.",
        "Example: skiff function deploy demo/square --image py:1 --python handlers:square --code ./src"
      })
  static final class Deploy implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Parameters(index = "0", paramLabel = "APP/NAME")
    String name;

    @Option(
        names = "--image",
        required = true,
        paramLabel = "IMAGE",
        description = "NAME[:TAG] or s3://BUCKET[/PREFIX]/NAME[:TAG]")
    String image;

    @Option(
        names = "--python",
        required = true,
        paramLabel = "MODULE:FUNCTION",
        description = "the handler")
    String handler;

    @Option(
        names = "--code",
        paramLabel = "DIR",
        description =
            "the handler's code, bound read-only into each container (default: the handler is in the image)")
    Path code;

    @Option(
        names = "--cpu",
        paramLabel = "N",
        description = "CPU cores per container, reserved and enforced (default: no limit)")
    double cpu;

    @Option(
        names = "--memory",
        paramLabel = "SIZE",
        description = "memory per container (512M, 2G), reserved and enforced (default: no limit)")
    String memory;

    @Option(
        names = "--gpu",
        split = ",",
        paramLabel = "TYPE[:N]",
        description =
            "GPUs per container: H100, A100-80GB:2, any; several in rank order for fallbacks")
    List<String> gpu = new ArrayList<>();

    @Option(
        names = "--timeout",
        defaultValue = "300s",
        paramLabel = "DURATION",
        description = "per attempt (default ${DEFAULT-VALUE})")
    String timeout;

    @Option(
        names = "--retries",
        defaultValue = "0",
        paramLabel = "N",
        description =
            "retries of a handler's error, timeout or memory kill (default ${DEFAULT-VALUE})")
    int retries;

    @Option(
        names = "--retry-backoff",
        defaultValue = "2",
        paramLabel = "X",
        description = "each retry's delay is the last one's times X (default ${DEFAULT-VALUE})")
    double backoff;

    @Option(
        names = "--retry-delay",
        defaultValue = "1s",
        paramLabel = "DURATION",
        description = "delay before the first retry (default ${DEFAULT-VALUE})")
    String retryDelay;

    @Option(
        names = "--retry-max-delay",
        defaultValue = "60s",
        paramLabel = "DURATION",
        description = "longest delay between retries (default ${DEFAULT-VALUE})")
    String retryMaxDelay;

    @Option(
        names = "--concurrency",
        defaultValue = "1",
        paramLabel = "N",
        description = "calls a container runs at once (default ${DEFAULT-VALUE})")
    int concurrency;

    @Option(
        names = "--min-containers",
        defaultValue = "0",
        paramLabel = "N",
        description = "containers kept warm (default ${DEFAULT-VALUE})")
    int min;

    @Option(
        names = "--max-containers",
        defaultValue = "20",
        paramLabel = "N",
        description = "most containers at once (default ${DEFAULT-VALUE})")
    int max;

    @Option(
        names = "--buffer-containers",
        defaultValue = "0",
        paramLabel = "N",
        description =
            "idle containers kept ready beyond the busy ones while there is work (default ${DEFAULT-VALUE})")
    int buffer;

    @Option(
        names = "--scaledown-window",
        defaultValue = "60s",
        paramLabel = "DURATION",
        description = "how long a container may idle before it stops (default ${DEFAULT-VALUE})")
    String scaledown;

    @Option(
        names = "--snapshot",
        description =
            "checkpoint a container right after the handler's import and restore later cold starts from it")
    boolean snapshot;

    @Option(
        names = "--secret",
        paramLabel = "NAME",
        description =
            "a secret whose values the containers get as environment variables (repeatable)")
    List<String> secrets = new ArrayList<>();

    @Option(
        names = {"-e", "--env"},
        paramLabel = "NAME=VALUE",
        description = "an environment variable (repeatable)")
    List<String> env = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
      String[] parts = name.split("/", -1);
      if (parts.length != 2) {
        throw new IllegalArgumentException("bad function name '" + name + "': want APP/NAME");
      }
      ImageSpec.parse(image);
      gpu.forEach(GpuRequest::parse);
      FunctionSpec.Builder b =
          FunctionSpec.newBuilder()
              .setApp(parts[0])
              .setName(parts[1])
              .setImage(image)
              .setLanguage("python")
              .setHandler(handler)
              .setTimeoutMs(RemoteOptions.duration(timeout).toMillis())
              .setRetries(
                  RetryPolicy.newBuilder()
                      .setMaxRetries(retries)
                      .setBackoff(backoff)
                      .setInitialDelayMs(RemoteOptions.duration(retryDelay).toMillis())
                      .setMaxDelayMs(RemoteOptions.duration(retryMaxDelay).toMillis()))
              .setConcurrency(concurrency)
              .setAutoscaling(
                  Autoscaling.newBuilder()
                      .setMinContainers(min)
                      .setMaxContainers(max)
                      .setBufferContainers(buffer)
                      .setScaledownWindowMs(RemoteOptions.duration(scaledown).toMillis()))
              .setSnapshot(snapshot)
              .addAllSecrets(secrets);
      b.getResourcesBuilder()
          .setCpus(cpu)
          .setMemoryBytes(memory == null ? 0 : Resources.parseBytes(memory))
          .addAllGpu(gpu);
      for (String kv : env) {
        int eq = kv.indexOf('=');
        if (eq <= 0) {
          throw new IllegalArgumentException(
              "bad environment variable '" + kv + "': want NAME=VALUE");
        }
        b.putEnv(kv.substring(0, eq), kv.substring(eq + 1));
      }
      try (ControlClient c = scheduler.connect()) {
        DeployResponse d = c.deploy(b.build(), code == null ? null : code.toAbsolutePath());
        System.out.printf(
            "deployed %s version %d%s%n",
            d.getFunction().getId(),
            d.getFunction().getVersion(),
            d.getFunction().getSpec().getCodeDigest().isEmpty()
                ? ""
                : " (code " + d.getFunction().getSpec().getCodeDigest().substring(7, 19) + ")");
        if (!d.getWarning().isEmpty()) {
          System.err.println("skiff function deploy: " + d.getWarning());
        }
      }
      return 0;
    }
  }

  @Command(
      name = "call",
      mixinStandardHelpOptions = true,
      description = {
        "Call a function and print its result (JSON) on stdout.",
        "INPUT is JSON: an object gives keyword arguments, an array positional ones, anything else one argument.",
        "Exit code: 0 success, 1 handler error, 124 timed out, 137 killed for memory, 130 cancelled, 70 internal failure."
      })
  static final class Call implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Parameters(index = "0", paramLabel = "APP/NAME")
    String function;

    @Parameters(index = "1", paramLabel = "INPUT", defaultValue = "[]")
    String input;

    @Override
    public Integer call() throws Exception {
      Input in = Inputs.parse(input);
      try (ControlClient c = scheduler.connect()) {
        String id = c.spawn(function, in);
        Result r = c.get(id, Duration.ofSeconds(2));
        if (r.getStatus() == Status.PENDING) {
          var waiting =
              c.calls(200, function).stream().filter(x -> x.getCallId().equals(id)).findFirst();
          waiting
              .filter(w -> !w.getWaiting().isEmpty())
              .ifPresent(w -> System.err.println("skiff function call: " + w.getWaiting()));
        }
        while (r.getStatus() == Status.PENDING || r.getStatus() == Status.RUNNING) {
          r = c.get(id, Duration.ofMinutes(10));
        }
        return finish(r);
      }
    }
  }

  static int finish(Result r) {
    if (r.getStatus() == Status.SUCCESS) {
      if (r.hasOutputRaw()) { // the handler returned bytes: they are the output, as they are
        try {
          r.getOutputRaw().writeTo(System.out);
        } catch (java.io.IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
        System.out.flush();
        return 0;
      }
      System.out.println(r.getOutputJson().toStringUtf8());
      return 0;
    }
    Inputs.printFailure(r, System.err);
    return Inputs.exitCode(r.getStatus());
  }

  @Command(
      name = "spawn",
      mixinStandardHelpOptions = true,
      description = {
        "Start a call and print its id at once; skiff call get ID waits for its result, skiff call cancel ID stops it.",
      })
  static final class Spawn implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Parameters(index = "0", paramLabel = "APP/NAME")
    String function;

    @Parameters(index = "1", paramLabel = "INPUT", defaultValue = "[]")
    String input;

    @Override
    public Integer call() throws Exception {
      Input in = Inputs.parse(input);
      try (ControlClient c = scheduler.connect()) {
        System.out.println(c.spawn(function, in));
      }
      return 0;
    }
  }

  @Command(
      name = "map",
      mixinStandardHelpOptions = true,
      description = {
        "Call a function on every line of stdin (one JSON input a line) and write its results to stdout.",
        "One result a line, in input order (or as they finish, with --unordered). Progress goes to stderr on a terminal.",
        "The first failure stops the map (exit code as for call) unless --return-exceptions writes it as {\"error\": ...}."
      })
  static final class MapInputs implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Parameters(index = "0", paramLabel = "APP/NAME")
    String function;

    @Option(names = "--unordered", description = "write results as they finish")
    boolean unordered;

    @Option(
        names = "--return-exceptions",
        description = "write failures as {\"error\": ...} lines and go on")
    boolean returnExceptions;

    @Option(
        names = "--window",
        defaultValue = "1000",
        paramLabel = "N",
        description = "inputs outstanding at most (default ${DEFAULT-VALUE})")
    int window;

    @Option(
        names = "--progress",
        negatable = true,
        description = "show progress on stderr (default: when stderr is a terminal)")
    Boolean progress;

    @Override
    public Integer call() throws Exception {
      BufferedReader in =
          new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
      BufferedWriter out =
          new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16);
      boolean show = progress != null ? progress : System.console() != null;
      AtomicLong sent = new AtomicLong();
      AtomicLong done = new AtomicLong();
      AtomicReference<Result> failed = new AtomicReference<>();
      Map<Long, Result> held = new HashMap<>();
      long[] next = {0};
      long t0 = System.nanoTime();
      Iterator<Input> inputs =
          new Iterator<>() {
            String line = advance();

            private String advance() {
              try {
                String l;
                do {
                  l = in.readLine();
                } while (l != null && l.isBlank());
                return l;
              } catch (java.io.IOException e) {
                throw new UncheckedIOException(e);
              }
            }

            @Override
            public boolean hasNext() {
              return line != null && failed.get() == null;
            }

            @Override
            public Input next() {
              if (!hasNext()) {
                throw new NoSuchElementException();
              }
              Input i = Inputs.parse(line);
              line = advance();
              sent.incrementAndGet();
              return i;
            }
          };
      try (ControlClient c = scheduler.connect()) {
        c.map(
            function,
            inputs,
            Math.max(1, window),
            (index, r) -> {
              synchronized (held) {
                if (failed.get() != null) {
                  return;
                }
                if (r.getStatus() != Status.SUCCESS && !returnExceptions) {
                  failed.set(r);
                  return;
                }
                try {
                  if (unordered) {
                    out.write(Inputs.line(r));
                    out.newLine();
                  } else {
                    held.put(index, r);
                    for (Result ready; (ready = held.remove(next[0])) != null; next[0]++) {
                      out.write(Inputs.line(ready));
                      out.newLine();
                    }
                  }
                } catch (java.io.IOException e) {
                  throw new UncheckedIOException(e);
                }
                long d = done.incrementAndGet();
                if (show && (d % 100 == 0)) {
                  progress(d, sent.get(), t0);
                }
              }
            });
      }
      out.flush();
      if (show) {
        progress(done.get(), sent.get(), t0);
        System.err.println();
      }
      Result f = failed.get();
      if (f != null) {
        Inputs.printFailure(f, System.err);
        return Inputs.exitCode(f.getStatus());
      }
      return 0;
    }

    private static void progress(long done, long sent, long t0) {
      double s = (System.nanoTime() - t0) / 1e9;
      System.err.printf(
          Locale.ROOT, "\r%,d of %,d done, %,.0f/s", done, sent, done / Math.max(s, 1e-3));
    }
  }
}
