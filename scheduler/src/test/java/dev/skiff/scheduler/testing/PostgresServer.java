package dev.skiff.scheduler.testing;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Assumptions;

/**
 * A real PostgreSQL server for tests (Debian's {@code postgresql} package), started on 127.0.0.1 in
 * a directory of its own and stopped with {@link #close}. As root it runs as the {@code postgres}
 * user, since PostgreSQL refuses to run as root. Skips (or fails, with SKIFF_REQUIRE_POSTGRES=1)
 * where PostgreSQL is not installed.
 */
public final class PostgresServer implements AutoCloseable {
  private static final AtomicInteger DATABASES = new AtomicInteger();

  private final Process server;
  private final Path dir;
  private final int port;

  private PostgresServer(Process server, Path dir, int port) {
    this.server = server;
    this.dir = dir;
    this.port = port;
  }

  /** The directory of Debian's PostgreSQL binaries, the newest version installed. */
  static Path binaries() {
    Path root = Path.of("/usr/lib/postgresql");
    try (var versions = Files.list(root)) {
      return versions
          .map(v -> v.resolve("bin"))
          .filter(b -> Files.isExecutable(b.resolve("postgres")))
          .max((a, b) -> Integer.compare(version(a), version(b)))
          .orElse(null);
    } catch (IOException e) {
      return null;
    }
  }

  private static int version(Path bin) {
    try {
      return Integer.parseInt(bin.getParent().getFileName().toString());
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  /** Starts a fresh server (initdb, then postgres) in a new directory under {@code parent}. */
  public static PostgresServer start(Path parent) throws IOException, InterruptedException {
    Path bin = binaries();
    if (bin == null) {
      String why = "PostgreSQL is not installed (apt-get install postgresql)";
      if ("1".equals(System.getenv("SKIFF_REQUIRE_POSTGRES"))) {
        throw new IllegalStateException(why);
      }
      Assumptions.abort(why);
    }
    boolean root = "root".equals(System.getProperty("user.name"));
    Path dir = Files.createTempDirectory(Path.of("/tmp"), "skiff-pg-");
    if (root) {
      run(List.of("chown", "postgres:postgres", dir.toString()), false);
    }
    Path data = dir.resolve("data");
    run(
        List.of(
            bin.resolve("initdb").toString(),
            "-D",
            data.toString(),
            "-A",
            "trust",
            "-U",
            "skiff",
            "--no-sync"),
        root);
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    List<String> cmd =
        new ArrayList<>(
            List.of(
                bin.resolve("postgres").toString(),
                "-D",
                data.toString(),
                "-k",
                dir.toString(),
                "-h",
                "127.0.0.1",
                "-p",
                Integer.toString(port),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=50"));
    Process p =
        process(cmd, root)
            .redirectOutput(dir.resolve("log").toFile())
            .redirectErrorStream(true)
            .start();
    PostgresServer s = new PostgresServer(p, dir, port);
    for (int i = 0; i < 200; i++) {
      try (Connection c = DriverManager.getConnection(s.url("postgres"))) {
        return s;
      } catch (SQLException e) {
        if (!p.isAlive()) {
          break;
        }
        Thread.sleep(50);
      }
    }
    s.close();
    throw new IOException("PostgreSQL did not start: " + Files.readString(dir.resolve("log")));
  }

  private static ProcessBuilder process(List<String> cmd, boolean asPostgres) {
    List<String> full = new ArrayList<>();
    if (asPostgres) {
      full.addAll(List.of("runuser", "-u", "postgres", "--"));
    }
    full.addAll(cmd);
    return new ProcessBuilder(full);
  }

  private static void run(List<String> cmd, boolean asPostgres)
      throws IOException, InterruptedException {
    Process p = process(cmd, asPostgres).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IOException(String.join(" ", cmd) + " failed: " + out);
    }
  }

  public int port() {
    return port;
  }

  /** A JDBC URL of database {@code db}. */
  public String url(String db) {
    return "jdbc:postgresql://127.0.0.1:" + port + "/" + db + "?user=skiff";
  }

  /** A new, empty database; returns its {@code postgresql://} URL. */
  public String newDatabase() throws SQLException {
    String name = "skiff_" + DATABASES.incrementAndGet();
    try (Connection c = DriverManager.getConnection(url("postgres"));
        Statement st = c.createStatement()) {
      st.execute("CREATE DATABASE " + name);
    }
    return "postgresql://skiff@127.0.0.1:" + port + "/" + name;
  }

  @Override
  public void close() throws IOException {
    server.destroy();
    try {
      if (!server.waitFor(20, TimeUnit.SECONDS)) {
        server.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    new ProcessBuilder("rm", "-rf", dir.toString()).start();
  }
}
