package dev.skiff.api;

import java.nio.file.Path;

/** Where Skiff keeps its state on a host, for the store, the CLI and the SDK alike. */
public final class SkiffHome {
  private SkiffHome() {}

  /**
   * {@code $SKIFF_HOME}, else {@code /var/lib/skiff} for root, else {@code ~/.local/share/skiff}.
   */
  public static Path defaultHome() {
    String env = System.getenv("SKIFF_HOME");
    if (env != null && !env.isBlank()) {
      return Path.of(env);
    }
    if ("root".equals(System.getProperty("user.name"))) {
      return Path.of("/var/lib/skiff");
    }
    return Path.of(System.getProperty("user.home"), ".local", "share", "skiff");
  }
}
