package dev.skiff.scheduler.client;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Where a client finds the scheduler and the token to present: {@code --scheduler} (given here as
 * {@code explicit}), then {@code $SKIFF_SCHEDULER}, then a running {@code skiff serve} of the same
 * home, which writes its address and client token to {@code HOME/serve.json}, readable by its owner
 * only. The token comes from {@code $SKIFF_TOKEN}, else from that file, else from the home's
 * scheduler token file when the scheduler runs on this host. {@code $SKIFF_CA} names the
 * certificate to trust when the scheduler speaks TLS.
 */
public record SchedulerAddress(String target, String token, Path ca) {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The file a {@code skiff serve} writes in its home. */
  public static Path serveFile(Path home) {
    return home.resolve("serve.json");
  }

  /** Finds the scheduler; throws with what to do when none is named or running. */
  public static SchedulerAddress find(String explicit, Path home) throws IOException {
    Optional<SchedulerAddress> served = served(home);
    String target = explicit;
    if (target == null || target.isBlank()) {
      target = System.getenv("SKIFF_SCHEDULER");
    }
    if (target == null || target.isBlank()) {
      if (served.isEmpty()) {
        throw new IOException(
            "no scheduler: start one with skiff serve, or name one with --scheduler HOST:PORT or"
                + " $SKIFF_SCHEDULER");
      }
      target = served.get().target();
    }
    String token = System.getenv("SKIFF_TOKEN");
    if (token == null || token.isBlank()) {
      String t = target;
      token =
          served
              .filter(s -> s.target().equals(t))
              .map(SchedulerAddress::token)
              .orElseGet(() -> localToken(home));
    }
    if (token == null) {
      throw new IOException(
          "no token for the scheduler at "
              + target
              + ": set $SKIFF_TOKEN to its client token (in "
              + TokenFile.path(home)
              + " on its host)");
    }
    String ca = System.getenv("SKIFF_CA");
    return new SchedulerAddress(target, token, ca == null || ca.isBlank() ? null : Path.of(ca));
  }

  private static String localToken(Path home) {
    try {
      return Files.isReadable(TokenFile.path(home))
          ? TokenFile.read(TokenFile.path(home)).client()
          : null;
    } catch (IOException e) {
      return null;
    }
  }

  /**
   * The address and token a running {@code skiff serve} of {@code home} wrote, if it still runs.
   */
  public static Optional<SchedulerAddress> served(Path home) {
    Path f = serveFile(home);
    try {
      if (!Files.isReadable(f)) {
        return Optional.empty();
      }
      var n = JSON.readTree(f.toFile());
      long pid = n.path("pid").asLong(-1);
      if (pid > 0 && ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
        return Optional.of(
            new SchedulerAddress(n.path("address").asText(), n.path("token").asText(), null));
      }
    } catch (IOException e) {
      // unreadable: as if no serve ran
    }
    return Optional.empty();
  }

  /** Writes {@code home}'s serve file for this process (0600). */
  public static void writeServeFile(Path home, String target, String token) throws IOException {
    Files.createDirectories(home);
    byte[] json =
        JSON.writerWithDefaultPrettyPrinter()
            .writeValueAsBytes(
                JSON.createObjectNode()
                    .put("address", target)
                    .put("token", token)
                    .put("pid", ProcessHandle.current().pid()));
    TokenFile.writePrivate(serveFile(home), json, true);
  }

  /** Removes the serve file if this process wrote it. */
  public static void removeServeFile(Path home) {
    Path f = serveFile(home);
    try {
      var n = JSON.readTree(f.toFile());
      if (n.path("pid").asLong() == ProcessHandle.current().pid()) {
        Files.deleteIfExists(f);
      }
    } catch (IOException e) {
      // gone already
    }
  }
}
