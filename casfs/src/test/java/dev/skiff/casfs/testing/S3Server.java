package dev.skiff.casfs.testing;

import com.adobe.testing.s3mock.S3MockApplication;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.Remotes;
import dev.skiff.casfs.store.S3Location;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;

/**
 * A real S3 API server for tests: Adobe S3Mock, started in this JVM on a free port, keeping its
 * objects as files under a directory (so tests can corrupt the server's copy). Can be stopped and
 * started again on the same port to play a store that goes down and comes back.
 */
public final class S3Server implements AutoCloseable {
  public static final String BUCKET = "skiff-test";
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path root;
  private final int port;
  private S3MockApplication app;

  public S3Server(Path root) throws IOException {
    this.root = Files.createDirectories(root);
    try (ServerSocket s = new ServerSocket(0)) {
      this.port = s.getLocalPort();
    }
    start();
  }

  public synchronized void start() {
    // Spring Boot inside S3Mock would take over logging and refuses to share SLF4J with the
    // binding Skiff's CLI ships; the server's own logs are not needed.
    System.setProperty("org.springframework.boot.logging.LoggingSystem", "none");
    Map<String, Object> props = new HashMap<>();
    props.put(S3MockApplication.PROP_HTTP_PORT, port);
    props.put(S3MockApplication.PROP_HTTPS_PORT, S3MockApplication.RANDOM_PORT);
    props.put(S3MockApplication.PROP_ROOT_DIRECTORY, root.toString());
    props.put(S3MockApplication.PROP_INITIAL_BUCKETS, BUCKET);
    props.put(S3MockApplication.PROP_SILENT, true);
    props.put("spring.main.banner-mode", "off");
    props.put("logging.level.root", "WARN");
    app = S3MockApplication.start(props);
  }

  public synchronized void stop() {
    if (app != null) {
      app.stop();
      app = null;
    }
  }

  public URI endpoint() {
    return URI.create("http://127.0.0.1:" + port);
  }

  public int port() {
    return port;
  }

  /** Where the server keeps object bytes. */
  public Path root() {
    return root;
  }

  public S3Location location(String prefix) {
    return new S3Location(BUCKET, prefix, endpoint(), "us-east-1", true);
  }

  /**
   * Remotes that reach every bucket URL at {@code endpoint} (this server, a proxy in front of it,
   * or a server that hangs) with this server's credentials, each call bounded by {@code
   * callTimeout} over {@code attempts} attempts; an image pulled from elsewhere is relocated there.
   */
  public static Remotes remotes(URI endpoint, Duration callTimeout, int attempts) {
    return new Remotes() {
      @Override
      public S3Location location(String url) {
        return S3Location.parse(url, endpoint, "us-east-1", true);
      }

      @Override
      public BlobStore open(S3Location where, Path scratch) {
        return BlobStores.s3(where, scratch, credentials(), callTimeout, attempts);
      }

      @Override
      public S3Location relocate(S3Location pulledFrom) {
        return location(pulledFrom.url());
      }
    };
  }

  /** The environment that gives a CLI process (its AWS SDK) this server's credentials. */
  public static final Map<String, String> CLIENT_ENV =
      Map.of(
          "AWS_ACCESS_KEY_ID",
          "test-key",
          "AWS_SECRET_ACCESS_KEY",
          "test-secret",
          "AWS_REGION",
          "us-east-1");

  public static StaticCredentialsProvider credentials() {
    return StaticCredentialsProvider.create(AwsBasicCredentials.create("test-key", "test-secret"));
  }

  /** A store on this server under {@code prefix}. */
  public BlobStore store(String prefix, Path scratch, Duration callTimeout) {
    return BlobStores.s3(location(prefix), scratch, credentials(), callTimeout, 3);
  }

  /** A store on this server under {@code prefix} that reads time from {@code clock}. */
  public BlobStore store(String prefix, Path scratch, Duration callTimeout, FakeClock clock) {
    return BlobStores.s3(location(prefix), scratch, credentials(), callTimeout, 3, clock);
  }

  /**
   * The keys of the multipart uploads begun and neither completed nor aborted, read from the
   * server's own files: S3Mock's ListMultipartUploads fails whole (500) once the bucket holds a
   * part that arrived after its upload was aborted (a folder without the upload's metadata), which
   * real S3 never shows, and which a client that aborts while parts are on their way cannot rule
   * out.
   */
  public List<String> openUploads() throws Exception {
    Path uploads = root.resolve(BUCKET).resolve("multiparts");
    if (!Files.isDirectory(uploads)) {
      return List.of();
    }
    List<String> keys = new ArrayList<>();
    try (DirectoryStream<Path> dirs = Files.newDirectoryStream(uploads)) {
      for (Path d : dirs) {
        Path meta = d.resolve("multipartMetadata.json");
        for (int attempt = 1; Files.exists(meta); attempt++) {
          String key = null;
          try {
            key = JSON.readTree(meta.toFile()).path("upload").path("Key").textValue();
          } catch (IOException halfWritten) { // the server writes it as the upload begins
            if (attempt == 50) {
              throw halfWritten;
            }
          }
          if (key != null) {
            keys.add(key);
            break;
          }
          if (attempt == 50) {
            throw new IOException(meta + " names no key: " + Files.readString(meta));
          }
          Thread.sleep(10);
        }
      }
    }
    keys.sort(null);
    return keys;
  }

  @Override
  public void close() {
    stop();
  }
}
