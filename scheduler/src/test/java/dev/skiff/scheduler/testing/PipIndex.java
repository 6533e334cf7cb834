package dev.skiff.scheduler.testing;

import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * A Python package index (PEP 503, the "simple" API pip reads) on 127.0.0.1 serving wheels made
 * here: each a pure-Python package of one module, since tests cannot reach PyPI. Counts the wheels
 * it hands out.
 */
public final class PipIndex implements AutoCloseable {
  private final HttpServer server;
  private final Map<String, byte[]> wheels = new LinkedHashMap<>(); // file name -> bytes
  private final AtomicInteger downloads = new AtomicInteger();

  private PipIndex(HttpServer server) {
    this.server = server;
  }

  /** An index serving, for each name and version, a package whose module sets {@code VALUE}. */
  public static PipIndex start(Map<String, String> packages) throws IOException {
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    PipIndex index = new PipIndex(server);
    packages.forEach((name, version) -> index.add(name, version));
    server.createContext(
        "/",
        ex -> {
          String path = ex.getRequestURI().getPath();
          byte[] body;
          String type;
          if (path.startsWith("/files/") && index.wheels.containsKey(path.substring(7))) {
            body = index.wheels.get(path.substring(7));
            type = "application/octet-stream";
            index.downloads.incrementAndGet();
          } else if (path.startsWith("/simple/")) {
            String project = path.substring("/simple/".length()).replaceAll("/+$", "");
            StringBuilder html = new StringBuilder("<!DOCTYPE html><html><body>\n");
            index.wheels.forEach(
                (file, bytes) -> {
                  if (project.isEmpty() || file.startsWith(project.replace('-', '_') + "-")) {
                    html.append("<a href=\"/files/")
                        .append(file)
                        .append("#sha256=")
                        .append(HexFormat.of().formatHex(sha256(bytes)))
                        .append("\">")
                        .append(file)
                        .append("</a>\n");
                  }
                });
            body = html.append("</body></html>\n").toString().getBytes(StandardCharsets.UTF_8);
            type = "text/html";
          } else {
            ex.sendResponseHeaders(404, -1);
            ex.close();
            return;
          }
          ex.getResponseHeaders().set("Content-Type", type);
          ex.sendResponseHeaders(200, body.length);
          try (var out = ex.getResponseBody()) {
            out.write(body);
          }
        });
    server.start();
    return index;
  }

  /** The index's URL, for {@code pip install --index-url}. */
  public String url() {
    return "http://127.0.0.1:" + server.getAddress().getPort() + "/simple";
  }

  /** How many wheels were downloaded. */
  public int downloads() {
    return downloads.get();
  }

  private void add(String name, String version) {
    String module = name.replace('-', '_');
    String dist = module + "-" + version;
    Map<String, byte[]> files = new LinkedHashMap<>();
    files.put(
        module + "/__init__.py",
        ("VALUE = " + module.length() + "\nVERSION = '" + version + "'\n")
            .getBytes(StandardCharsets.UTF_8));
    files.put(
        dist + ".dist-info/METADATA",
        ("Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n")
            .getBytes(StandardCharsets.UTF_8));
    files.put(
        dist + ".dist-info/WHEEL",
        "Wheel-Version: 1.0\nGenerator: skiff-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
            .getBytes(StandardCharsets.UTF_8));
    StringBuilder record = new StringBuilder();
    files.forEach(
        (path, bytes) ->
            record
                .append(path)
                .append(",sha256=")
                .append(Base64.getUrlEncoder().withoutPadding().encodeToString(sha256(bytes)))
                .append(',')
                .append(bytes.length)
                .append('\n'));
    record.append(dist).append(".dist-info/RECORD,,\n");
    files.put(dist + ".dist-info/RECORD", record.toString().getBytes(StandardCharsets.UTF_8));
    ByteArrayOutputStream wheel = new ByteArrayOutputStream();
    try (ZipOutputStream zip = new ZipOutputStream(wheel)) {
      for (var f : files.entrySet()) {
        zip.putNextEntry(new ZipEntry(f.getKey()));
        zip.write(f.getValue());
        zip.closeEntry();
      }
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    wheels.put(dist + "-py3-none-any.whl", wheel.toByteArray());
  }

  private static byte[] sha256(byte[] b) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(b);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    server.stop(0);
  }
}
