package dev.skiff.tools;

import dev.skiff.casfs.DamagedTagException;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.NoSuchImageException;
import dev.skiff.casfs.image.ExpansionLimitException;
import dev.skiff.casfs.index.DamagedIndexException;
import dev.skiff.runtime.NoSuchSnapshotException;
import java.io.PrintWriter;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The {@code skiff} command line. */
@Command(
    name = "skiff",
    mixinStandardHelpOptions = true,
    version = "skiff 0.1.0",
    description =
        "Import container images into a deduplicated content-addressed store, mount them lazily"
            + " from the local store or from S3, run them in gVisor sandboxes, and run functions on"
            + " them through a scheduler and worker daemons.")
public final class SkiffCli implements Runnable {
  /**
   * The subcommands, added in {@link #execute}. A command line names one: only its model is built,
   * since picocli reads every option of every command it is given, by reflection (about 0.2 s on
   * each start for all of them: picocli's classes are too old a class file version for the JDK's
   * AOT cache); help, no command or a name not found get them all.
   */
  private static final Class<?>[] COMMANDS = {
    ImportCommand.class,
    BuildCommand.class,
    ImagesCommand.class,
    InspectCommand.class,
    RmiCommand.class,
    GcCommand.class,
    FsckCommand.class,
    MountCommand.class,
    UmountCommand.class,
    PushCommand.class,
    PullCommand.class,
    CacheCommand.class,
    TraceCommand.class,
    OptimizeCommand.class,
    RunCommand.class,
    GpusCommand.class,
    PsCommand.class,
    KillCommand.class,
    SnapshotCommand.class,
    RestoreCommand.class,
    TrainCommand.class,
    ServeCommand.class,
    SchedulerCommand.class,
    WorkerCommand.class,
    FunctionCommand.class,
    CallCommand.class,
    LogsCommand.class,
    PlatformLists.Workers.class,
    PlatformLists.Containers.class,
    PlatformLists.Apps.class,
    PlatformLists.Functions.class,
    PlatformLists.Calls.class,
    SecretCommand.class,
    CommandLine.HelpCommand.class
  };

  /** Options every command that touches the store takes. */
  static final class StoreOptions {
    @Option(
        names = "--store",
        paramLabel = "DIR",
        description =
            "Skiff home (default: $SKIFF_HOME, else /var/lib/skiff for root, else ~/.local/share/skiff)")
    Path store;

    Path home() {
      return store != null ? store : ImageStore.defaultHome();
    }
  }

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  public static void main(String[] args) {
    System.exit(execute(args));
  }

  /**
   * Runs the CLI and returns its exit code (for tests). Whatever a command throws, a JVM {@code
   * Error} included, ends as one line on stderr and exit code 1 ({@code SKIFF_DEBUG=1} adds the
   * stack trace).
   */
  public static int execute(String... args) {
    CommandLine cl = new CommandLine(new SkiffCli());
    Class<?> named = args.length > 0 ? named(args[0]) : null;
    for (Class<?> c : COMMANDS) {
      if (named == null || c == named) {
        cl.addSubcommand(c);
      }
    }
    cl.setExecutionExceptionHandler((e, cmd, parsed) -> fail(subcommand(cmd), e, cmd.getErr()));
    try {
      return cl.execute(args);
    } catch (
        Throwable
            e) { // picocli hands Errors (OutOfMemoryError, StackOverflowError) on: the last line of
      // defence
      return fail(args.length > 0 ? args[0] : "", e, cl.getErr());
    }
  }

  /** The command called {@code name} (never help, which wants them all), or null. */
  private static Class<?> named(String name) {
    for (Class<?> c : COMMANDS) {
      Command command = c.getAnnotation(Command.class);
      if (command != null
          && !c.equals(CommandLine.HelpCommand.class)
          && (command.name().equals(name)
              || java.util.Arrays.asList(command.aliases()).contains(name))) {
        return c;
      }
    }
    return null;
  }

  /** A subcommand's full name without the leading "skiff": "trace show" for skiff trace show. */
  private static String subcommand(CommandLine cmd) {
    String name = cmd.getCommandSpec().qualifiedName(" ");
    return name.startsWith("skiff") ? name.substring("skiff".length()).strip() : name;
  }

  /** Prints the one-line message for a failed command and returns its exit code. */
  static int fail(String command, Throwable e, PrintWriter err) {
    err.println("skiff" + (command.isEmpty() ? "" : " " + command) + ": " + message(e));
    if (System.getenv("SKIFF_DEBUG") != null) {
      e.printStackTrace(err);
    }
    err.flush();
    return 1;
  }

  /** The message of a failure; for a JVM error, what it was, in one line. */
  static String message(Throwable e) {
    if (e instanceof Error) {
      String what =
          e instanceof OutOfMemoryError
              ? "out of memory"
              : e instanceof StackOverflowError ? "stack overflow" : e.getClass().getSimpleName();
      return "internal error ("
          + what
          + (e.getMessage() == null ? "" : ": " + e.getMessage())
          + "); run with SKIFF_DEBUG=1 for the stack trace";
    }
    if (e instanceof io.grpc.StatusRuntimeException s) {
      return switch (s.getStatus().getCode()) {
        case UNAVAILABLE ->
            "cannot reach the scheduler ("
                + s.getStatus().getDescription()
                + "): is skiff serve or skiff scheduler running?";
        case UNAUTHENTICATED -> "the scheduler refused the token (check $SKIFF_TOKEN)";
        case DEADLINE_EXCEEDED -> "the scheduler did not answer in time";
        default ->
            s.getStatus().getDescription() != null
                ? s.getStatus().getDescription()
                : s.getStatus().getCode().toString();
      };
    }
    String m = e.getMessage();
    if (m == null || m.isBlank()) {
      return e.getClass().getSimpleName();
    }
    // Library errors say what is wrong; the command line adds where to look.
    if (e instanceof NoSuchImageException n && n.where() == null) {
      return m + " (see skiff images)";
    }
    if (e instanceof NoSuchSnapshotException n) {
      return m + " (see skiff snapshot ls " + n.image() + ")";
    }
    if (e instanceof ExpansionLimitException) {
      return m + " (raise --max-expansion to import it anyway)";
    }
    if (e instanceof DamagedIndexException || e instanceof DamagedTagException) {
      return m + " (skiff fsck checks the store)";
    }
    return m;
  }
}
