package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** A {@code skiff mount} running in its own JVM, as a user starts it, with its output collected. */
final class MountProcess {
  final Process process;
  final Path dir;
  private final StringBuilder out = new StringBuilder();

  /** Starts {@code skiff mount ARGS... DIR} and waits until it says it is mounted. */
  MountProcess(Path dir, Map<String, String> env, String... args)
      throws IOException, InterruptedException {
    this.dir = Files.createDirectories(dir);
    List<String> cmd = new ArrayList<>(SkiffProcess.command("mount"));
    cmd.addAll(List.of(args));
    cmd.add(dir.toString());
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().putAll(env);
    process = pb.start();
    BufferedReader r =
        new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    Thread pump =
        new Thread(
            () -> {
              try {
                String line;
                while ((line = r.readLine()) != null) {
                  synchronized (out) {
                    out.append(line).append('\n');
                    out.notifyAll();
                  }
                }
              } catch (IOException ignored) {
                // the process ended
              }
            });
    pump.setDaemon(true);
    pump.start();
    long deadline = System.currentTimeMillis() + 60_000;
    synchronized (out) {
      while (!out.toString().contains("mounted ")
          && System.currentTimeMillis() < deadline
          && process.isAlive()) {
        out.wait(1000);
      }
    }
    assertTrue(output().contains("mounted "), "mount did not come up:\n" + output());
  }

  /** Waits (up to a minute) until the process has printed {@code text}. */
  void awaitOutput(String text) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    synchronized (out) {
      while (!out.toString().contains(text)
          && System.currentTimeMillis() < deadline
          && process.isAlive()) {
        out.wait(1000);
      }
    }
    assertTrue(output().contains(text), "never printed '" + text + "':\n" + output());
  }

  String output() {
    synchronized (out) {
      return out.toString();
    }
  }
}
