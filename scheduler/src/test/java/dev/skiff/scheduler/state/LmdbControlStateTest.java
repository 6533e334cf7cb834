package dev.skiff.scheduler.state;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

class LmdbControlStateTest extends ControlStateContract {
  @TempDir Path tmp;

  private Path dir;

  @Override
  protected ControlState fresh() throws IOException {
    dir = Files.createTempDirectory(tmp, "state");
    return LmdbControlState.open(dir);
  }

  @Override
  protected ControlState reopen(ControlState s) throws IOException {
    s.close();
    return LmdbControlState.open(dir);
  }
}
