package dev.skiff.tools;

import dev.skiff.scheduler.client.ControlClient;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(
    name = "secret",
    mixinStandardHelpOptions = true,
    description =
        "Secrets: named values kept by the scheduler (readable by its owner only) that reach, as"
            + " environment variables, only the containers of functions deployed with --secret NAME.",
    subcommands = {SecretCommand.Create.class, SecretCommand.Ls.class})
final class SecretCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  @Command(
      name = "create",
      mixinStandardHelpOptions = true,
      description = "Create or replace a secret.")
  static final class Create implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Parameters(index = "0", paramLabel = "NAME")
    String name;

    @Parameters(index = "1..*", arity = "1..*", paramLabel = "KEY=VALUE")
    List<String> values = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
      Map<String, String> m = new LinkedHashMap<>();
      for (String kv : values) {
        int eq = kv.indexOf('=');
        if (eq <= 0) {
          throw new IllegalArgumentException(
              "bad secret value '" + kv.split("=")[0] + "...': want KEY=VALUE");
        }
        m.put(kv.substring(0, eq), kv.substring(eq + 1));
      }
      try (ControlClient c = scheduler.connect()) {
        c.createSecret(name, m);
        System.out.println("secret " + name + ": " + String.join(", ", m.keySet()));
      }
      return 0;
    }
  }

  @Command(
      name = "ls",
      mixinStandardHelpOptions = true,
      description = "List the secrets' names (never their values).")
  static final class Ls implements Callable<Integer> {
    @Mixin SchedulerOptions scheduler;

    @Override
    public Integer call() throws Exception {
      try (ControlClient c = scheduler.connect()) {
        c.secrets().forEach(System.out::println);
      }
      return 0;
    }
  }
}
