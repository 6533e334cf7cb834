package dev.skiff.casfs.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * An image in an OCI image layout or a {@code docker save} archive (legacy layout or OCI inside),
 * each as a directory or a tar file.
 */
final class ContainerImageSource implements ImageSource {
  private static final ObjectMapper JSON = new ObjectMapper();
  static final Set<String> LAYER_TYPES =
      Set.of(
          "application/vnd.oci.image.layer.v1.tar",
          "application/vnd.oci.image.layer.v1.tar+gzip",
          "application/vnd.oci.image.layer.v1.tar+zstd",
          "application/vnd.oci.image.layer.nondistributable.v1.tar",
          "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
          "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
          "application/vnd.docker.image.rootfs.diff.tar.gzip",
          "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip");
  private static final Set<String> INDEX_TYPES =
      Set.of(
          "application/vnd.oci.image.index.v1+json",
          "application/vnd.docker.distribution.manifest.list.v2+json");

  private final Archive archive;
  private final String describe;
  private final byte[] config;
  private final List<Layer> layers;

  private ContainerImageSource(
      Archive archive, String describe, byte[] config, List<Layer> layers) {
    this.archive = archive;
    this.describe = describe;
    this.config = config;
    this.layers = layers;
  }

  static boolean recognises(Archive a) {
    return a.exists("manifest.json") || (a.exists("index.json") && a.exists("oci-layout"));
  }

  /** Reads the manifest of the image tagged {@code tag} (or the only image, if tag is null). */
  static ContainerImageSource open(Archive a, String tag) throws IOException {
    try {
      return a.exists("manifest.json") ? docker(a, tag) : oci(a, tag);
    } catch (IOException | RuntimeException e) {
      a.close();
      throw e;
    }
  }

  private static JsonNode json(Archive a, String path) throws IOException {
    return parse(a, path, a.readSmall(path));
  }

  private static JsonNode parse(Archive a, String path, byte[] bytes) throws IOException {
    try {
      return JSON.readTree(bytes);
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      throw new ImportException(a.describe(), path, "not valid JSON: " + e.getOriginalMessage());
    }
  }

  /** A metadata blob (manifest, config) whose content must match the digest it is named by. */
  private static byte[] checked(Archive a, String path, String digest, String what)
      throws IOException {
    byte[] bytes = a.readSmall(path);
    String got = LayerStreams.digestOf(bytes, digest, a.describe());
    if (!got.equals(digest)) {
      throw new ImportException(
          a.describe(), path, what + " digest mismatch: named " + digest + ", content is " + got);
    }
    return bytes;
  }

  private static String blobPath(Archive a, String digest) throws ImportException {
    int colon = digest.indexOf(':');
    if (colon <= 0 || !digest.substring(colon + 1).matches("[a-f0-9]{32,128}")) {
      throw new ImportException(a.describe(), digest, "malformed digest");
    }
    return "blobs/" + digest.substring(0, colon) + "/" + digest.substring(colon + 1);
  }

  private static ContainerImageSource oci(Archive a, String tag) throws IOException {
    JsonNode index = json(a, "index.json");
    JsonNode chosen = null;
    List<String> tags = new ArrayList<>();
    for (JsonNode m : index.path("manifests")) {
      String ref = m.path("annotations").path("org.opencontainers.image.ref.name").asText(null);
      if (ref != null) {
        tags.add(ref);
      }
      if (tag != null && tag.equals(ref)) {
        chosen = m;
      }
    }
    if (chosen == null) {
      if (tag != null) {
        throw new ImportException(
            a.describe(), null, "no image tagged '" + tag + "' (tags: " + tags + ")");
      }
      if (index.path("manifests").size() != 1) {
        throw new ImportException(
            a.describe(),
            null,
            "holds "
                + index.path("manifests").size()
                + " images; name one with PATH:TAG (tags: "
                + tags
                + ")");
      }
      chosen = index.path("manifests").get(0);
    }
    JsonNode manifest = resolveManifest(a, chosen);
    String configDigest = manifest.path("config").path("digest").asText();
    byte[] config = checked(a, blobPath(a, configDigest), configDigest, "image config");
    List<Layer> layers = new ArrayList<>();
    for (JsonNode l : manifest.path("layers")) {
      String mt = l.path("mediaType").asText();
      String digest = l.path("digest").asText();
      if (!LAYER_TYPES.contains(mt)) {
        throw new ImportException(a.describe(), digest, "unknown layer media type '" + mt + "'");
      }
      String path = blobPath(a, digest);
      if (!a.exists(path)) {
        throw new ImportException(
            a.describe(), digest, "manifest points at a missing layer blob " + path);
      }
      layers.add(layer(a, path, digest, mt));
    }
    return new ContainerImageSource(
        a, a.describe() + (tag == null ? "" : ":" + tag), config, layers);
  }

  private static JsonNode resolveManifest(Archive a, JsonNode descriptor) throws IOException {
    for (int depth = 0; depth < 4; depth++) {
      String mt = descriptor.path("mediaType").asText();
      String digest = descriptor.path("digest").asText();
      String path = blobPath(a, digest);
      if (!a.exists(path)) {
        throw new ImportException(a.describe(), digest, "manifest blob missing");
      }
      JsonNode doc = parse(a, path, checked(a, path, digest, "manifest"));
      if (!INDEX_TYPES.contains(mt) && !doc.has("manifests")) {
        return doc;
      }
      JsonNode pick = null;
      for (JsonNode m : doc.path("manifests")) {
        JsonNode p = m.path("platform");
        if ("linux".equals(p.path("os").asText())
            && "amd64".equals(p.path("architecture").asText())) {
          pick = m;
          break;
        }
      }
      if (pick == null && doc.path("manifests").size() == 1) {
        pick = doc.path("manifests").get(0);
      }
      if (pick == null) {
        throw new ImportException(a.describe(), null, "image index has no linux/amd64 manifest");
      }
      descriptor = pick;
    }
    throw new ImportException(a.describe(), null, "image indexes nested too deeply");
  }

  private static ContainerImageSource docker(Archive a, String tag) throws IOException {
    JsonNode manifests = json(a, "manifest.json");
    JsonNode chosen = null;
    List<String> tags = new ArrayList<>();
    for (JsonNode m : manifests) {
      for (JsonNode t : m.path("RepoTags")) {
        tags.add(t.asText());
        if (tag != null && (t.asText().equals(tag) || t.asText().endsWith(":" + tag))) {
          chosen = m;
        }
      }
    }
    if (chosen == null) {
      if (tag != null) {
        throw new ImportException(
            a.describe(), null, "no image tagged '" + tag + "' (tags: " + tags + ")");
      }
      if (manifests.size() != 1) {
        throw new ImportException(
            a.describe(),
            null,
            "holds " + manifests.size() + " images; name one with PATH:TAG (tags: " + tags + ")");
      }
      chosen = manifests.get(0);
    }
    String configPath = chosen.path("Config").asText();
    // docker save names the config by its digest: HEX.json (legacy) or blobs/sha256/HEX (Docker
    // 25+).
    var named =
        java.util.regex.Pattern.compile("(?:blobs/sha256/)?([0-9a-f]{64})(?:\\.json)?")
            .matcher(configPath);
    byte[] config =
        named.matches()
            ? checked(a, configPath, "sha256:" + named.group(1), "image config")
            : a.readSmall(configPath);
    List<Layer> layers = new ArrayList<>();
    for (JsonNode l : chosen.path("Layers")) {
      String path = l.asText();
      if (!a.exists(path)) {
        throw new ImportException(a.describe(), path, "manifest points at a missing layer");
      }
      String digest =
          path.startsWith("blobs/sha256/")
              ? "sha256:" + path.substring("blobs/sha256/".length())
              : null;
      layers.add(layer(a, path, digest, null));
    }
    return new ContainerImageSource(
        a, a.describe() + (tag == null ? "" : ":" + tag), config, layers);
  }

  private static Layer layer(Archive a, String path, String digest, String mediaType)
      throws IOException {
    String describe = a.describe() + ": layer " + (digest != null ? digest : path);
    return Layer.streamed(describe, digest, mediaType, a.size(path), () -> a.open(path));
  }

  @Override
  public String describe() {
    return describe;
  }

  @Override
  public byte[] config() {
    return config;
  }

  @Override
  public List<Layer> layers() {
    return layers;
  }

  @Override
  public void close() throws IOException {
    archive.close();
  }
}
