package dev.skiff.scheduler.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two containers of functions with the same class path start at once: each builds the class path's
 * directory and renames it into place. The second rename finds the first one's directory, which is
 * the same, and that is no failure (it once failed the container's start with "Directory not
 * empty").
 */
class PublishTest {
  @TempDir Path tmp;

  private Path built(String name) throws IOException {
    Path d = Files.createDirectory(tmp.resolve(name));
    Files.writeString(d.resolve("000.jar"), "jar");
    return d;
  }

  @Test
  void theSecondOfTwoRacingStartsUsesTheFirstOnesDirectory() throws IOException {
    Path dir = tmp.resolve("classpath");
    Worker.publish(built(".a"), dir);
    Path second = built(".b");
    Worker.publish(second, dir);
    assertEquals("jar", Files.readString(dir.resolve("000.jar")));
    assertTrue(Files.exists(second), "left for the caller to remove");
  }

  @Test
  void aRenameThatFailsForAnotherReasonStillFails() throws IOException {
    Path missing = tmp.resolve("no-such-parent").resolve("classpath");
    assertThrows(IOException.class, () -> Worker.publish(built(".c"), missing));
  }
}
