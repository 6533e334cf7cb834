package dev.skiff.tools;

import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.runtime.Sandbox;
import dev.skiff.runtime.SandboxProcess;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.Snapshot;
import dev.skiff.runtime.SnapshotStore;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "snapshot",
    mixinStandardHelpOptions = true,
    description =
        "Memory snapshots of sandboxes: take one after an expensive start-up, restore it many times.",
    subcommands = {
      SnapshotCommand.Create.class,
      SnapshotCommand.Ls.class,
      SnapshotCommand.Rm.class
    })
final class SnapshotCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  @Command(
      name = "create",
      mixinStandardHelpOptions = true,
      description = {
        "Run CMD in a sandbox until it prints a READY line, then checkpoint it as snapshot NAME of IMAGE.",
        "READY goes to stdout after its expensive start-up and before it reads its stdin.",
        "Restore it with skiff restore IMAGE NAME: the process goes on from there, with new stdin and stdout.",
        "Example: skiff snapshot create py:1 numpy -- python3 -c \\",
        "  'import numpy, sys; print(\"skiff:ready\", flush=True); exec(sys.stdin.read())'"
      })
  static final class Create implements Callable<Integer> {
    @Mixin SkiffCli.StoreOptions store;

    @Mixin RemoteOptions remote;

    @Mixin SandboxCliOptions sandbox;

    @Option(
        names = "--ready",
        defaultValue = "skiff:ready",
        paramLabel = "LINE",
        description = "the line that says start-up is done (default ${DEFAULT-VALUE})")
    String ready;

    @Option(
        names = "--ready-timeout",
        defaultValue = "5m",
        paramLabel = "DURATION",
        description = "give up if READY has not come after this long (default ${DEFAULT-VALUE})")
    String readyTimeout;

    @Parameters(index = "0", paramLabel = "IMAGE")
    String image;

    @Parameters(index = "1", paramLabel = "NAME")
    String name;

    @Parameters(index = "2..*", arity = "1..*", paramLabel = "CMD")
    List<String> command = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
      try (ImageStore s = ImageStore.open(store.home());
          SandboxRuntime rt = sandbox.open(s, remote, false);
          // stdin stays open and empty: the process waits on it while it is checkpointed.
          Sandbox sb = rt.run(ImageSpec.parse(image), sandbox.options(), command, true)) {
        long t0 = System.nanoTime();
        SandboxProcess p = sb.main().orElseThrow();
        p.pipeStderrTo(new FileOutputStream(FileDescriptor.err));
        CompletableFuture<Boolean> sawReady =
            CompletableFuture.supplyAsync(() -> awaitLine(p, ready));
        Boolean ok =
            sawReady
                .completeOnTimeout(
                    false, RemoteOptions.duration(readyTimeout).toMillis(), TimeUnit.MILLISECONDS)
                .get();
        if (!ok) {
          // Either stdout ended (the process is exiting) or the wait ran out (it still runs).
          var exit = p.waitFor(Duration.ofSeconds(5));
          System.err.printf(
              "skiff snapshot create: %s did not print '%s' (%s)%n",
              String.join(" ", command),
              ready,
              exit.isEmpty()
                  ? "timed out after " + readyTimeout
                  : exit.get().signal() != 0
                      ? "it was killed by signal " + exit.get().signal()
                      : "it exited with " + exit.get().code());
          return 1;
        }
        long ready = System.nanoTime();
        Snapshot snap = sb.checkpoint(name);
        System.out.printf(
            Locale.ROOT,
            "snapshot %s of %s: %s, start-up %.0f ms, checkpoint %.0f ms%n",
            name,
            sb.imageRef(),
            Human.bytes(snap.bytes()),
            (ready - t0) / 1e6,
            (System.nanoTime() - ready) / 1e6);
        p.waitFor(Duration.ofSeconds(10));
      }
      return 0;
    }

    /** Passes stdout through until the READY line; true if it came. */
    private static boolean awaitLine(SandboxProcess p, String ready) {
      try {
        BufferedReader r =
            new BufferedReader(new InputStreamReader(p.stdout(), StandardCharsets.UTF_8));
        for (String line; (line = r.readLine()) != null; ) {
          if (line.equals(ready)) {
            return true;
          }
          System.out.println(line);
        }
      } catch (java.io.IOException e) {
        // the process went away
      }
      return false;
    }
  }

  @Command(
      name = "ls",
      mixinStandardHelpOptions = true,
      description = "List the snapshots of an image.")
  static final class Ls implements Callable<Integer> {
    @Mixin SkiffCli.StoreOptions store;

    @Mixin RemoteOptions remote;

    @Parameters(index = "0", paramLabel = "IMAGE")
    String image;

    @Override
    public Integer call() throws Exception {
      try (ImageStore s = ImageStore.open(store.home())) {
        SnapshotStore snapshots = new SnapshotStore(s, remote);
        System.out.printf(
            "%-20s %-10s %-10s %-24s %s%n", "NAME", "SIZE", "PLATFORM", "CREATED", "COMMAND");
        for (Snapshot snap : snapshots.list(ImageSpec.parse(image))) {
          System.out.printf(
              "%-20s %-10s %-10s %-24s %s%n",
              snap.name(),
              Human.bytes(snap.bytes()),
              snap.platform(),
              snap.created(),
              String.join(" ", snap.command()));
        }
      }
      return 0;
    }
  }

  @Command(
      name = "rm",
      mixinStandardHelpOptions = true,
      description = "Remove a snapshot of an image.")
  static final class Rm implements Callable<Integer> {
    @Mixin SkiffCli.StoreOptions store;

    @Mixin RemoteOptions remote;

    @Parameters(index = "0", paramLabel = "IMAGE")
    String image;

    @Parameters(index = "1", paramLabel = "NAME")
    String name;

    @Override
    public Integer call() throws Exception {
      try (ImageStore s = ImageStore.open(store.home())) {
        if (!new SnapshotStore(s, remote).remove(ImageSpec.parse(image), name)) {
          System.err.println("skiff snapshot rm: no snapshot '" + name + "' of " + image);
          return 1;
        }
        System.out.println("removed snapshot " + name + " of " + image);
      }
      return 0;
    }
  }
}
