package dev.skiff.tools;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The {@code skiff} command in its own JVM, as a user starts it: stdout and stderr collected
 * separately, stdin open for writing, signals delivered as to any process.
 */
final class SkiffProcess {
  final Process process;
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();
  private final Thread[] pumps;

  SkiffProcess(String... args) throws IOException {
    this(Map.of(), List.of(), args);
  }

  /** With more environment variables and JVM options. */
  SkiffProcess(Map<String, String> env, List<String> jvmOptions, String... args)
      throws IOException {
    ProcessBuilder pb = new ProcessBuilder(command(jvmOptions, args));
    pb.environment().putAll(env);
    process = pb.start();
    pumps = new Thread[] {pump(process.getInputStream(), out), pump(process.getErrorStream(), err)};
  }

  /**
   * JVM options that make the logging of the test class path (which S3Mock's Logback is on) that of
   * the skiff command a user runs, which ships slf4j-simple alone.
   */
  static final List<String> CLI_LOGGING =
      List.of(
          "-Dslf4j.provider=org.slf4j.simple.SimpleServiceProvider",
          "-Dslf4j.internal.verbosity=WARN");

  /** The java command line that runs the CLI with {@code args} on this test's class path. */
  static List<String> command(String... args) {
    return command(List.of(), args);
  }

  static List<String> command(List<String> jvmOptions, String... args) {
    List<String> cmd = new ArrayList<>();
    cmd.add(ProcessHandle.current().info().command().orElse("java"));
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("--add-opens")
          || a.startsWith("--enable-native-access")
          || a.startsWith("--sun-misc")) {
        cmd.add(a);
      }
    }
    cmd.addAll(CLI_LOGGING);
    cmd.addAll(jvmOptions);
    cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), SkiffCli.class.getName()));
    cmd.addAll(List.of(args));
    return cmd;
  }

  private static Thread pump(InputStream in, ByteArrayOutputStream to) {
    return Thread.ofPlatform()
        .daemon()
        .start(
            () -> {
              byte[] buf = new byte[8192];
              try {
                for (int n; (n = in.read(buf)) >= 0; ) {
                  synchronized (to) {
                    to.write(buf, 0, n);
                  }
                }
              } catch (IOException ignored) {
                // the process ended
              }
            });
  }

  /** Writes {@code text} to stdin and closes it. */
  SkiffProcess input(String text) throws IOException {
    try (var in = process.getOutputStream()) {
      in.write(text.getBytes(StandardCharsets.UTF_8));
    }
    return this;
  }

  /** Waits for the exit (up to a minute) and returns the exit code. */
  int exit() throws InterruptedException {
    if (!process.waitFor(60, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError("skiff did not exit within 60 s; stderr:\n" + err());
    }
    for (Thread t : pumps) {
      t.join(10_000);
    }
    return process.exitValue();
  }

  String out() {
    synchronized (out) {
      return out.toString(StandardCharsets.UTF_8);
    }
  }

  String err() {
    synchronized (err) {
      return err.toString(StandardCharsets.UTF_8);
    }
  }

  /** Sends a signal by name (INT, TERM, KILL) with kill(1). */
  void signal(String name) throws IOException, InterruptedException {
    if (name.equals("INT")) {
      assumeSigintDelivered();
    }
    new ProcessBuilder("kill", "-" + name, Long.toString(process.pid()))
        .inheritIO()
        .start()
        .waitFor();
  }

  /**
   * Fails with the reason when this process ignores SIGINT, as a child does that a non-interactive
   * shell started in the background ({@code tools/test &}): the ignore is inherited, and a JVM
   * started ignoring SIGINT never runs its shutdown hooks on Ctrl-C, so a Ctrl-C test would fail
   * for no fault of the code.
   */
  static void assumeSigintDelivered() throws IOException {
    for (String line :
        java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
      if (line.startsWith("SigIgn:")) {
        long ignored = Long.parseUnsignedLong(line.substring(7).strip(), 16);
        if ((ignored & (1L << (2 - 1))) != 0) { // SIGINT is 2
          throw new AssertionError(
              "SIGINT is ignored in this process tree (the tests were started in the background"
                  + " by a shell without job control): run them in the foreground, or under"
                  + " `set -m`, for the Ctrl-C tests");
        }
      }
    }
  }
}
