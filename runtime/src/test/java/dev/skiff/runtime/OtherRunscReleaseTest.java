package dev.skiff.runtime;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The same tests on the other runsc release Debian offers (2022-12 in bookworm, 2024-07 in
 * bookworm-backports): tools/test fetches the one not installed and names it in $SKIFF_RUNSC_ALT.
 * Skipped, with a message, where it is not set.
 */
class OtherRunscReleaseTest extends SandboxTest {
  @Override
  Path runsc() {
    String alt = System.getenv("SKIFF_RUNSC_ALT");
    assumeTrue(
        alt != null && Files.isExecutable(Path.of(alt)),
        "skipped: SKIFF_RUNSC_ALT names no runsc (tools/test fetches the other Debian release into it)");
    return Path.of(alt);
  }
}
