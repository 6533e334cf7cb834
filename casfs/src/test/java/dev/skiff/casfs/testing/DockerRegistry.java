package dev.skiff.casfs.testing;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Debian's {@code docker-registry} (the distribution project's registry), started on a free port on
 * 127.0.0.1 with its storage under {@code dir}, anonymous or with one htpasswd user; stopped on
 * close. Images go in with skopeo.
 */
public final class DockerRegistry implements AutoCloseable {
  private final Process process;
  private final int port;

  private DockerRegistry(Process process, int port) {
    this.process = process;
    this.port = port;
  }

  /** Skips the test where the registry (Debian package docker-registry) or skopeo is missing. */
  public static void require() {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        Environment.onPath("docker-registry") && Environment.onPath("skopeo"),
        "needs docker-registry and skopeo (Debian packages docker-registry, skopeo)");
  }

  /** An anonymous registry. */
  public static DockerRegistry start(Path dir) throws IOException {
    return start(dir, null, null);
  }

  /** A registry that wants {@code user}'s {@code password} (Basic auth), when user is not null. */
  public static DockerRegistry start(Path dir, String user, String password) throws IOException {
    require();
    Files.createDirectories(dir);
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    StringBuilder config =
        new StringBuilder(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
                + dir.resolve("data")
                + "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:"
                + port
                + "\n");
    if (user != null) {
      Path htpasswd = dir.resolve("htpasswd");
      run(List.of("htpasswd", "-Bbc", htpasswd.toString(), user, password));
      config
          .append("auth:\n  htpasswd:\n    realm: skiff-test\n    path: ")
          .append(htpasswd)
          .append('\n');
    }
    Path file = dir.resolve("config.yml");
    Files.writeString(file, config);
    Process p =
        new ProcessBuilder("docker-registry", "serve", file.toString())
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve("registry.log").toFile())
            .start();
    DockerRegistry r = new DockerRegistry(p, port);
    for (int i = 0; i < 100; i++) {
      try {
        HttpURLConnection c =
            (HttpURLConnection)
                URI.create("http://127.0.0.1:" + port + "/v2/").toURL().openConnection();
        c.setConnectTimeout(200);
        int code = c.getResponseCode();
        c.disconnect();
        if (code == 200 || code == 401) {
          return r;
        }
      } catch (IOException notYet) {
        // starting
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    r.close();
    throw new IOException(
        "docker-registry did not start: " + Files.readString(dir.resolve("registry.log")));
  }

  /** {@code 127.0.0.1:PORT}. */
  public String address() {
    return "127.0.0.1:" + port;
  }

  /** Copies an OCI layout's image into the registry as {@code repository:tag}. */
  public void put(Path layout, String layoutTag, String repositoryAndTag, String... creds)
      throws IOException {
    putWith(List.of(), layout, layoutTag, repositoryAndTag, creds);
  }

  /** {@link #put} with more skopeo options ({@code --format v2s2}, say). */
  public void putWith(
      List<String> options, Path layout, String layoutTag, String repositoryAndTag, String... creds)
      throws IOException {
    List<String> cmd =
        new java.util.ArrayList<>(List.of("skopeo", "copy", "--quiet", "--dest-tls-verify=false"));
    cmd.addAll(options);
    if (creds.length == 1) {
      cmd.add("--dest-creds=" + creds[0]);
    }
    cmd.add("oci:" + layout + ":" + layoutTag);
    cmd.add("docker://" + address() + "/" + repositoryAndTag);
    run(cmd);
  }

  /** Runs a command, failing with what it printed. */
  public static String run(List<String> cmd) throws IOException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    try {
      if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new IOException(String.join(" ", cmd) + " failed: " + out);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
    return out;
  }

  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}
