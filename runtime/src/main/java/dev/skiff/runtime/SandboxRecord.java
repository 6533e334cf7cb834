package dev.skiff.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.casfs.Owner;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * What a sandbox's state directory says about it: which process owns it (serves its root filesystem
 * and waits for it), since when, and what it runs. Written before anything is mounted or started,
 * so that whatever a crash leaves behind can be found and cleaned by the next start.
 *
 * @param ownerStart the owner's start time as the OS reports it (a reused pid does not match)
 */
public record SandboxRecord(
    String id,
    long ownerPid,
    String ownerStart,
    String image,
    String created,
    List<String> command,
    String kind) {
  static final String FILE = "sandbox.json";
  private static final ObjectMapper JSON = new ObjectMapper();

  static SandboxRecord forThisProcess(String id, String image, List<String> command, String kind) {
    Owner me = Owner.current();
    return new SandboxRecord(
        id, me.pid(), me.start(), image, Instant.now().toString(), List.copyOf(command), kind);
  }

  /** Whether the process that owns the sandbox is still running. */
  public boolean ownerAlive() {
    return new Owner(ownerPid, ownerStart).alive();
  }

  void write(Path dir) throws IOException {
    Path tmp = dir.resolve(FILE + ".tmp");
    JSON.writeValue(tmp.toFile(), this);
    Files.move(
        tmp,
        dir.resolve(FILE),
        StandardCopyOption.ATOMIC_MOVE,
        StandardCopyOption.REPLACE_EXISTING);
  }

  /**
   * The record in {@code dir}, or empty if there is none (a directory half made or half removed).
   */
  static Optional<SandboxRecord> read(Path dir) {
    try {
      return Optional.of(JSON.readValue(dir.resolve(FILE).toFile(), SandboxRecord.class));
    } catch (IOException e) {
      return Optional.empty();
    }
  }
}
