package dev.skiff.scheduler.runner;

import dev.skiff.runtime.SandboxOptions;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * Skiff's Python runner ({@code skiff_runner.py}, standard library only): installed once per home
 * and bound read-only into each container at {@link #DIR}, never baked into an image. A function's
 * code is bound read-only at {@link #CODE}.
 */
public final class PythonRunner {
  /** Where the runner is in a container. */
  public static final String DIR = "/.skiff/runner";

  /** Where a function's code is in a container. */
  public static final String CODE = "/.skiff/code";

  private static final String SCRIPT = "skiff_runner.py";

  private PythonRunner() {}

  /** Writes the runner into {@code dir} (replacing an older one) and returns the directory. */
  public static Path install(Path dir) throws IOException {
    Files.createDirectories(dir);
    Path tmp = Files.createTempFile(dir, ".runner-", ".py");
    try (InputStream in = PythonRunner.class.getResourceAsStream(SCRIPT)) {
      if (in == null) {
        throw new IllegalStateException(SCRIPT + " is missing from the scheduler jar");
      }
      Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
      Files.move(tmp, dir.resolve(SCRIPT), StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
    return dir;
  }

  /** The read-only volumes a container of a Python function gets: the runner and its code. */
  public static List<SandboxOptions.Volume> volumes(Path runnerDir, Path codeDir) {
    return codeDir == null
        ? List.of(new SandboxOptions.Volume(runnerDir, DIR, true))
        : List.of(
            new SandboxOptions.Volume(runnerDir, DIR, true),
            new SandboxOptions.Volume(codeDir, CODE, true));
  }

  /**
   * The runner's command line for {@code handler} ({@code module:function}), serving up to {@code
   * concurrency} calls at once.
   */
  public static List<String> command(
      String python, String handler, boolean withCode, int concurrency) {
    return List.of(
        python,
        "-u",
        DIR + "/" + SCRIPT,
        handler,
        withCode ? CODE : "-",
        Integer.toString(concurrency));
  }
}
