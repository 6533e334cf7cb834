package dev.skiff.scheduler.client;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * A scheduler's two tokens, one for clients and one for workers, kept in a file only its owner can
 * read ({@code HOME/control/tokens.json}), made on the first start and the same ever after.
 */
public record TokenFile(String client, String worker) {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Where a home keeps its scheduler's tokens. */
  public static Path path(Path home) {
    return home.resolve("control").resolve("tokens.json");
  }

  /** Reads the tokens of {@code home}'s scheduler, making them first if there are none. */
  public static TokenFile loadOrCreate(Path home) throws IOException {
    Path file = path(home);
    if (Files.exists(file)) {
      return read(file);
    }
    Files.createDirectories(file.getParent());
    TokenFile t = new TokenFile(Tokens.generate(), Tokens.generate());
    ObjectNode n = JSON.createObjectNode().put("client", t.client()).put("worker", t.worker());
    writePrivate(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(n));
    return read(file); // whoever won a race to make it
  }

  public static TokenFile read(Path file) throws IOException {
    var n = JSON.readTree(file.toFile());
    String client = n.path("client").asText("");
    String worker = n.path("worker").asText("");
    if (client.isEmpty() || worker.isEmpty()) {
      throw new IOException(file + " lacks a client or worker token");
    }
    return new TokenFile(client, worker);
  }

  /**
   * Writes {@code bytes} to {@code file} readable by its owner only (0600), atomically; an existing
   * file is kept unless {@code replace}.
   */
  public static void writePrivate(Path file, byte[] bytes, boolean replace) throws IOException {
    Path tmp =
        Files.createTempFile(
            file.getParent(),
            "." + file.getFileName(),
            ".tmp",
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    try {
      Files.write(tmp, bytes);
      if (replace) {
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } else {
        try {
          Files.createLink(file, tmp);
        } catch (FileAlreadyExistsException e) {
          // made by another start at the same time: theirs stands
        }
      }
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private static void writePrivate(Path file, byte[] bytes) throws IOException {
    writePrivate(file, bytes, false);
  }
}
