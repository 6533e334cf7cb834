package dev.skiff.casfs.testing;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The real multi-layer test image (built by make-image.sh with umoci and skopeo), built once per
 * JVM.
 */
public final class TestImages {
  private static Path built;

  private TestImages() {}

  public static Path resource(String name) {
    try {
      return Path.of(TestImages.class.getResource("/testimages/" + name).toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Builds the image into a directory under target/ and returns it (see make-image.sh for the
   * layout).
   */
  public static synchronized Path build() throws IOException, InterruptedException {
    if (built == null) {
      Path out = Path.of("target", "testimage").toAbsolutePath();
      run(List.of("bash", resource("make-image.sh").toString(), out.toString()), 300);
      built = out;
    }
    return built;
  }

  /** The tree manifest of {@code root} (see tree-manifest.py). */
  public static String manifest(Path root) throws IOException, InterruptedException {
    return run(List.of("python3", resource("tree-manifest.py").toString(), root.toString()), 300);
  }

  public static String run(List<String> cmd, int timeoutSeconds)
      throws IOException, InterruptedException {
    Path log = Files.createTempFile("skiff-test-", ".out");
    Path err = Files.createTempFile("skiff-test-", ".err");
    try {
      Process p =
          new ProcessBuilder(cmd).redirectOutput(log.toFile()).redirectError(err.toFile()).start();
      if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException("timed out: " + cmd);
      }
      String out = Files.readString(log, StandardCharsets.ISO_8859_1);
      if (p.exitValue() != 0) {
        throw new IOException(
            cmd + " exited " + p.exitValue() + ":\n" + out + Files.readString(err));
      }
      return out;
    } finally {
      Files.deleteIfExists(log);
      Files.deleteIfExists(err);
    }
  }
}
