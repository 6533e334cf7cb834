package dev.skiff.casfs.testing;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.zip.GZIPOutputStream;

/** Writes minimal OCI image layouts by hand, so tests can break them in precise ways. */
public final class OciLayouts {
  private OciLayouts() {}

  public static String sha256(byte[] b) {
    try {
      return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  public static byte[] gzip(byte[] b) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (GZIPOutputStream g = new GZIPOutputStream(out)) {
      g.write(b);
    }
    return out.toByteArray();
  }

  public static Path blob(Path layout, String digest) {
    return layout.resolve("blobs/sha256/" + digest.substring("sha256:".length()));
  }

  private static String put(Path layout, byte[] b) throws IOException {
    String d = sha256(b);
    Files.createDirectories(blob(layout, d).getParent());
    Files.write(blob(layout, d), b);
    return d;
  }

  /** Writes a layout tagged {@code tag} whose layers are the given uncompressed tars, gzipped. */
  public static Path write(Path layout, String tag, String mediaType, byte[]... tars)
      throws IOException {
    return write(layout, tag, mediaType, true, tars);
  }

  /**
   * Writes a layout tagged {@code tag} whose layers are the given tars, gzipped or as they are
   * ({@code application/vnd.oci.image.layer.v1.tar}, what {@code docker save} of Docker 25+
   * writes).
   */
  public static Path write(Path layout, String tag, String mediaType, boolean gzip, byte[]... tars)
      throws IOException {
    Files.createDirectories(layout);
    Files.writeString(layout.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
    StringBuilder diffIds = new StringBuilder();
    for (byte[] tar : tars) {
      diffIds
          .append(diffIds.length() == 0 ? "" : ",")
          .append("\"")
          .append(sha256(tar))
          .append("\"");
    }
    byte[] configJson =
        ("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]},"
                + "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
                + diffIds
                + "]}}")
            .getBytes(UTF_8);
    String config = put(layout, configJson);
    StringBuilder layers = new StringBuilder();
    for (byte[] tar : tars) {
      byte[] gz = gzip ? gzip(tar) : tar;
      String d = put(layout, gz);
      layers
          .append(layers.length() == 0 ? "" : ",")
          .append("{\"mediaType\":\"")
          .append(mediaType)
          .append("\",\"digest\":\"")
          .append(d)
          .append("\",\"size\":")
          .append(gz.length)
          .append('}');
    }
    byte[] manifest =
        ("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                + "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\""
                + config
                + "\",\"size\":"
                + configJson.length
                + "},\"layers\":["
                + layers
                + "]}")
            .getBytes(UTF_8);
    String m = put(layout, manifest);
    Files.writeString(
        layout.resolve("index.json"),
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
            + "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\""
            + m
            + "\",\"size\":"
            + manifest.length
            + ",\"annotations\":{\"org.opencontainers.image.ref.name\":\""
            + tag
            + "\"}}]}");
    return layout;
  }

  /** The digest of layer {@code i} (0-based) of the layout's only manifest. */
  public static String layerDigest(Path layout, int i) throws IOException {
    String index = Files.readString(layout.resolve("index.json"));
    String m = index.replaceAll("(?s).*\"digest\":\"(sha256:[0-9a-f]+)\".*", "$1");
    String manifest = Files.readString(blob(layout, m));
    String[] parts = manifest.split("\"digest\":\"");
    return parts[2 + i].substring(0, parts[2 + i].indexOf('"'));
  }
}
