package dev.skiff.scheduler.runner;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.scheduler.CodeBundle;
import dev.skiff.sdk.runner.JavaRunner;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Skiff's Java runner ({@link JavaRunner}, in the SDK's jar) and Jackson, installed once per home
 * under the runner directory's {@code java/} and bound read-only into each container of a Java
 * function with the Python runner, never baked into an image. The jars are the worker's own (the
 * SDK and Jackson it runs with), so runner and worker always agree on the protocol.
 */
public final class JavaRunnerJars {
  /** The jars in a container, in class path order. */
  private static final List<String> JARS =
      List.of(
          "skiff-sdk.jar", "jackson-databind.jar", "jackson-core.jar", "jackson-annotations.jar");

  private JavaRunnerJars() {}

  /** Copies the runner's jars into {@code runnerDir/java} (replacing older ones). */
  public static void install(Path runnerDir) throws IOException {
    Path dir = Files.createDirectories(runnerDir.resolve("java"));
    List<Class<?>> from =
        List.of(JavaRunner.class, ObjectMapper.class, JsonFactory.class, JsonProperty.class);
    for (int i = 0; i < JARS.size(); i++) {
      Path source = location(from.get(i));
      Path tmp = Files.createTempFile(dir, ".jar-", ".tmp");
      try {
        if (Files.isDirectory(source)) {
          // classes straight from a build's output directory (the project's own tests)
          Files.write(tmp, CodeBundle.pack(source));
        } else {
          Files.copy(source, tmp, StandardCopyOption.REPLACE_EXISTING);
        }
        Files.move(tmp, dir.resolve(JARS.get(i)), StandardCopyOption.ATOMIC_MOVE);
      } finally {
        Files.deleteIfExists(tmp);
      }
    }
  }

  private static Path location(Class<?> c) throws IOException {
    try {
      return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IOException("cannot find the jar of " + c.getName() + ": " + e, e);
    }
  }

  /**
   * The runner's command line for {@code handler} ({@code CLASS::METHOD} or {@code CLASS#METHOD})
   * on the JVM {@code java}, serving up to {@code concurrency} calls at once; {@code handler} "-"
   * starts a warm runner that waits to be told its function (see {@link RunnerChannel#load}). The
   * JVM's own log goes to stderr: stdout is the channel.
   */
  public static List<String> command(
      String java, String handler, boolean withCode, int concurrency) {
    List<String> cp = new ArrayList<>();
    for (String jar : JARS) {
      cp.add(PythonRunner.DIR + "/java/" + jar);
    }
    return List.of(
        java,
        "-Xlog:disable",
        "-Xlog:all=warning:stderr",
        "-XX:-UsePerfData",
        // G1 gives memory back after the collection a runner makes before a memory snapshot
        // (measured: 110 MB checkpoint -> 25 MB); the JVM would pick the serial collector, which
        // keeps it, in a container of one CPU
        "-XX:+UseG1GC",
        // a warm runner sets its function's environment through these
        "--add-opens=java.base/java.lang=ALL-UNNAMED",
        "--add-opens=java.base/java.util=ALL-UNNAMED",
        "-cp",
        String.join(":", cp),
        JavaRunner.class.getName(),
        handler,
        withCode ? PythonRunner.CODE : "-",
        Integer.toString(concurrency));
  }
}
