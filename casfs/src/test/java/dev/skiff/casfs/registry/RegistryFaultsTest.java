package dev.skiff.casfs.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.image.ImportResult;
import dev.skiff.casfs.testing.OciLayouts;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a real registry will not do on demand, from a registry written here (JDK's HttpServer):
 * Bearer tokens from a token service, image indexes with several platforms, answers that fail for a
 * moment, manifests and layers that are not what their digests say, a registry that dies in the
 * middle of a layer, schema 1 manifests. Each ends in the image or in a clear error, and a pull
 * that fails leaves nothing tagged.
 */
class RegistryFaultsTest {
  @TempDir Path tmp;
  HttpServer server;
  String address;
  final Map<String, byte[]> manifests = new ConcurrentHashMap<>(); // "repo/ref" -> body
  final Map<String, String> manifestTypes = new ConcurrentHashMap<>();
  final Map<String, byte[]> blobs = new ConcurrentHashMap<>(); // digest -> body
  final AtomicInteger failNext = new AtomicInteger(); // answer 503 this many times
  volatile int cutLayerAfter = -1; // close a layer's connection after this many bytes
  volatile String corruptDigest; // serve this blob with a byte flipped
  volatile int corruptAt = -1; // which (-1: the middle)
  final AtomicInteger tokens = new AtomicInteger();

  @BeforeEach
  void start() throws IOException {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    address = "127.0.0.1:" + server.getAddress().getPort();
    server.createContext("/token", this::token);
    server.createContext("/v2/", this::v2);
    server.start();
  }

  @AfterEach
  void stop() {
    server.stop(0);
  }

  private void token(HttpExchange x) throws IOException {
    String auth = x.getRequestHeaders().getFirst("Authorization");
    String query = x.getRequestURI().getQuery();
    if (auth == null
        || !auth.equals(
            "Basic " + java.util.Base64.getEncoder().encodeToString("ada:pw".getBytes()))
        || !query.contains("service=fake")
        || !query.contains("scope=repository")) {
      answer(x, 401, "{}".getBytes(), "application/json");
      return;
    }
    tokens.incrementAndGet();
    answer(x, 200, "{\"token\":\"tok-1\"}".getBytes(), "application/json");
  }

  private void v2(HttpExchange x) throws IOException {
    if (!"Bearer tok-1".equals(x.getRequestHeaders().getFirst("Authorization"))) {
      x.getResponseHeaders()
          .add(
              "WWW-Authenticate", "Bearer realm=\"http://" + address + "/token\",service=\"fake\"");
      answer(
          x,
          401,
          "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"auth\"}]}".getBytes(),
          "application/json");
      return;
    }
    if (failNext.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
      answer(x, 503, "busy".getBytes(), "text/plain");
      return;
    }
    String path = x.getRequestURI().getPath().substring("/v2/".length());
    int m = path.indexOf("/manifests/");
    int b = path.indexOf("/blobs/");
    if (m > 0) {
      String key = path.substring(0, m) + "/" + path.substring(m + "/manifests/".length());
      byte[] body = manifests.get(key);
      if (body == null) {
        answer(
            x,
            404,
            "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}"
                .getBytes(),
            "application/json");
        return;
      }
      answer(x, 200, body, manifestTypes.get(key));
    } else if (b > 0) {
      String digest = path.substring(b + "/blobs/".length());
      byte[] body = blobs.get(digest);
      if (body == null) {
        answer(
            x,
            404,
            "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"blob unknown\"}]}".getBytes(),
            "application/json");
        return;
      }
      if (digest.equals(corruptDigest)) {
        body = body.clone();
        body[corruptAt < 0 ? body.length / 2 : corruptAt] ^= 1;
      }
      if (cutLayerAfter >= 0 && body.length > 100_000) {
        x.sendResponseHeaders(200, body.length);
        try (OutputStream out = x.getResponseBody()) {
          out.write(body, 0, cutLayerAfter);
          out.flush();
        }
        return; // the exchange ends short of its Content-Length: the client sees the cut
      }
      answer(x, 200, body, "application/octet-stream");
    } else {
      answer(x, 200, "{}".getBytes(), "application/json");
    }
  }

  private static void answer(HttpExchange x, int status, byte[] body, String type)
      throws IOException {
    x.getResponseHeaders().add("Content-Type", type);
    x.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
    try (OutputStream out = x.getResponseBody()) {
      out.write(body);
    }
  }

  /** Serves an OCI layout's image as {@code repo:tag} (and its manifest by digest). */
  private String serve(Path layout, String repo, String tag) throws IOException {
    try (var files = Files.walk(layout.resolve("blobs"))) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        blobs.put("sha256:" + f.getFileName(), Files.readAllBytes(f));
      }
    }
    String index = Files.readString(layout.resolve("index.json"));
    String digest = index.replaceAll("(?s).*\"digest\":\"(sha256:[0-9a-f]+)\".*", "$1");
    byte[] manifest = blobs.get(digest);
    for (String ref : new String[] {tag, digest}) {
      manifests.put(repo + "/" + ref, manifest);
      manifestTypes.put(repo + "/" + ref, RegistryClient.OCI_MANIFEST);
    }
    return digest;
  }

  private Path layout(String name, int seed) throws IOException {
    byte[] big = new byte[1 << 20];
    new SplittableRandom(seed).nextBytes(big);
    return OciLayouts.write(
        tmp.resolve(name),
        "t",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        new Tars().dir("data", 0755).file("data/big", big, 0644).file("seed", "" + seed).bytes());
  }

  private RegistryClient.Options options() {
    return RegistryClient.Options.defaults()
        .withDockerConfig(tmp.resolve("none.json"))
        .withCredentials("ada:pw");
  }

  private ImportResult pull(ImageStore store, String ref, RegistryClient.Options o, String as)
      throws IOException {
    return store.pullFromRegistry(
        RegistryRef.parse("docker://" + address + "/" + ref),
        o,
        ImageRef.parse(as),
        ImportProgress.NONE);
  }

  private boolean tagged(ImageStore store, String name) throws IOException {
    return store.images().stream().anyMatch(i -> i.ref().name().equals(name));
  }

  @Test
  void bearerTokensComeFromTheTokenServiceWithTheUsersCredentials() throws Exception {
    serve(layout("a", 1), "team/a", "1");
    try (ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      RegistryException anonymous =
          assertThrows(
              RegistryException.class,
              () -> pull(store, "team/a:1", options().withCredentials(null), "a:1"));
      assertTrue(anonymous.getMessage().contains("token service"), anonymous.getMessage());
      pull(store, "team/a:1", options(), "a:1");
      assertEquals(1, tokens.get(), "one token for the repository, reused for every request");
    }
  }

  @Test
  void anIndexResolvesToThePlatformAsked() throws Exception {
    String amd = serve(layout("amd", 1), "team/multi", "amd");
    String arm = serve(layout("arm", 2), "team/multi", "arm");
    byte[] index =
        ("{\"schemaVersion\":2,\"mediaType\":\""
                + RegistryClient.OCI_INDEX
                + "\",\"manifests\":["
                + "{\"mediaType\":\""
                + RegistryClient.OCI_MANIFEST
                + "\",\"digest\":\""
                + arm
                + "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
                + "{\"mediaType\":\""
                + RegistryClient.OCI_MANIFEST
                + "\",\"digest\":\""
                + amd
                + "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}")
            .getBytes(StandardCharsets.UTF_8);
    manifests.put("team/multi/1", index);
    manifestTypes.put("team/multi/1", RegistryClient.OCI_INDEX);
    try (ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      ImportResult a = pull(store, "team/multi:1", options(), "m:amd");
      assertTrue(a.source().endsWith("@" + amd), a.source());
      ImportResult b = pull(store, "team/multi:1", options().withPlatform("linux/arm64"), "m:arm");
      assertTrue(b.source().endsWith("@" + arm), b.source());
      RegistryException none =
          assertThrows(
              RegistryException.class,
              () -> pull(store, "team/multi:1", options().withPlatform("linux/s390x"), "m:s"));
      assertTrue(
          none.getMessage()
              .contains("no image for linux/s390x (it has [linux/arm64/v8, linux/amd64])"),
          none.getMessage());
    }
  }

  @Test
  void answersThatFailForAMomentAreRetried() throws Exception {
    serve(layout("a", 1), "team/a", "1");
    try (ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      failNext.set(2);
      pull(store, "team/a:1", options(), "a:1");
      failNext.set(10);
      RegistryException busy =
          assertThrows(RegistryException.class, () -> pull(store, "team/a:1", options(), "a:2"));
      assertEquals(503, busy.status(), busy.getMessage());
      assertTrue(
          !tagged(store, "a") || store.images().stream().noneMatch(i -> i.ref().tag().equals("2")));
    }
  }

  @Test
  void contentThatIsNotWhatItsDigestSaysIsRefusedAndNothingIsTagged() throws Exception {
    String digest = serve(layout("a", 1), "team/a", "1");
    try (ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      // A manifest asked for by digest whose content is another.
      manifests.put("team/a/" + "sha256:" + "0".repeat(64), blobs.get(digest));
      manifestTypes.put("team/a/" + "sha256:" + "0".repeat(64), RegistryClient.OCI_MANIFEST);
      RegistryException manifest =
          assertThrows(
              RegistryException.class,
              () -> pull(store, "team/a@sha256:" + "0".repeat(64), options(), "bad:1"));
      assertTrue(
          manifest.getMessage().contains("the manifest's content is " + digest),
          manifest.getMessage());
      // A layer with a byte flipped: in its data (gzip's own check sees it first), and in gzip's
      // header time stamp (which gzip does not check: the layer's digest does).
      corruptDigest = OciLayouts.layerDigest(tmp.resolve("a"), 0);
      IOException layer =
          assertThrows(IOException.class, () -> pull(store, "team/a:1", options(), "bad:2"));
      assertTrue(layer.getMessage().contains("corrupt"), layer.getMessage());
      corruptAt = 4;
      IOException header =
          assertThrows(IOException.class, () -> pull(store, "team/a:1", options(), "bad:3"));
      assertTrue(header.getMessage().contains("digest mismatch"), header.getMessage());
      assertTrue(!tagged(store, "bad"), "nothing tagged");
      // Fixed: the pull goes through, into a consistent store.
      corruptDigest = null;
      pull(store, "team/a:1", options(), "good:1");
      var fsck = store.fsck(true);
      assertTrue(
          fsck.missingPacks().isEmpty()
              && fsck.corruptChunks().isEmpty()
              && fsck.damagedImages().isEmpty(),
          fsck.toString());
    }
  }

  @Test
  void aRegistryThatDiesInTheMiddleOfALayerFailsThePullCleanly() throws Exception {
    serve(layout("a", 1), "team/a", "1");
    try (ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      cutLayerAfter = 300_000;
      IOException cut =
          assertThrows(IOException.class, () -> pull(store, "team/a:1", options(), "a:1"));
      assertTrue(!tagged(store, "a"), "nothing tagged after " + cut);
      cutLayerAfter = -1;
      pull(store, "team/a:1", options(), "a:1");
      assertTrue(tagged(store, "a"));
    }
  }

  @Test
  void schemaOneAndMissingImagesSayWhatTheyAre() throws Exception {
    manifests.put("old/img/1", "{\"schemaVersion\":1,\"fsLayers\":[]}".getBytes());
    manifestTypes.put("old/img/1", "application/vnd.docker.distribution.manifest.v1+prettyjws");
    try (ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      RegistryException old =
          assertThrows(RegistryException.class, () -> pull(store, "old/img:1", options(), "o:1"));
      assertTrue(old.getMessage().contains("schema 1"), old.getMessage());
      RegistryException missing =
          assertThrows(RegistryException.class, () -> pull(store, "no/img:1", options(), "o:1"));
      assertTrue(
          missing.getMessage().contains("404 MANIFEST_UNKNOWN: manifest unknown"),
          missing.getMessage());
    }
  }
}
