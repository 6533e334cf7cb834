package dev.skiff.casfs.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.InetAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A client of one registry's distribution API (v2): manifests (OCI and Docker, image indexes and
 * manifest lists resolved to one platform), blobs, and uploads. It authenticates as the registry
 * asks (anonymous, Basic, or Bearer tokens from the registry's token service, with the user's
 * credentials where it has them), checks every manifest and small blob against its digest, and
 * retries what fails for a moment (connections refused or reset, 429 and 5xx answers) with backoff.
 * HTTPS, except for registries on loopback and those named insecure (as Docker allows).
 */
public final class RegistryClient {
  private static final org.slf4j.Logger LOG =
      org.slf4j.LoggerFactory.getLogger(RegistryClient.class);

  public static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
  public static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
  public static final String OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
  public static final String DOCKER_MANIFEST =
      "application/vnd.docker.distribution.manifest.v2+json";
  public static final String DOCKER_LIST =
      "application/vnd.docker.distribution.manifest.list.v2+json";
  private static final String ACCEPT =
      String.join(", ", OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST);
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The most a manifest or image config may be. */
  static final int MAX_METADATA = 4 << 20;

  /**
   * How registries are reached.
   *
   * @param platform {@code OS/ARCH[/VARIANT]} chosen from an image index
   * @param credentials {@code USER:PASSWORD} for every registry, or null to look in {@code
   *     dockerConfig}
   * @param insecure registries ({@code HOST[:PORT]}) spoken to over plain HTTP; loopback always is
   * @param attempts tries of a request that fails for a moment
   * @param dockerConfig Docker's {@code config.json}, where {@code docker login} keeps credentials
   *     (or names the credential helper that does)
   * @param helperPath where credential helpers ({@code docker-credential-NAME}) are looked for, as
   *     a PATH ({@code DIR:DIR})
   */
  public record Options(
      String platform,
      String credentials,
      Set<String> insecure,
      int attempts,
      Duration timeout,
      Path dockerConfig,
      String helperPath) {
    public Options {
      insecure = Set.copyOf(insecure);
      if (!platform.matches("[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")) {
        throw new IllegalArgumentException("want a platform as OS/ARCH[/VARIANT], got " + platform);
      }
      if (credentials != null && !credentials.contains(":")) {
        throw new IllegalArgumentException("want credentials as USER:PASSWORD");
      }
    }

    /**
     * linux/amd64, credentials from Docker's config, and the registries named in {@code
     * $SKIFF_INSECURE_REGISTRIES} (comma-separated) as insecure.
     */
    public static Options defaults() {
      String env = System.getenv("SKIFF_INSECURE_REGISTRIES");
      Set<String> insecure =
          env == null || env.isBlank() ? Set.of() : Set.of(env.strip().split("\\s*,\\s*"));
      String dockerDir = System.getenv("DOCKER_CONFIG");
      Path config =
          dockerDir != null
              ? Path.of(dockerDir, "config.json")
              : Path.of(System.getProperty("user.home"), ".docker", "config.json");
      String path = System.getenv("PATH");
      return new Options(
          "linux/amd64",
          null,
          insecure,
          4,
          Duration.ofSeconds(60),
          config,
          path != null ? path : "/usr/local/bin:/usr/bin:/bin");
    }

    public Options withPlatform(String p) {
      return new Options(p, credentials, insecure, attempts, timeout, dockerConfig, helperPath);
    }

    public Options withCredentials(String c) {
      return new Options(platform, c, insecure, attempts, timeout, dockerConfig, helperPath);
    }

    public Options withDockerConfig(Path config) {
      return new Options(platform, credentials, insecure, attempts, timeout, config, helperPath);
    }

    /** These options, credential helpers looked for in {@code path} ({@code DIR:DIR}). */
    public Options withHelperPath(String path) {
      return new Options(platform, credentials, insecure, attempts, timeout, dockerConfig, path);
    }

    public Options withInsecure(String registry) {
      Set<String> s = new java.util.HashSet<>(insecure);
      s.add(registry);
      return new Options(platform, credentials, s, attempts, timeout, dockerConfig, helperPath);
    }
  }

  /** A content descriptor: what a manifest says of a blob. */
  public record Descriptor(String mediaType, String digest, long size) {}

  /** An image manifest, checked against its digest. */
  public record Manifest(
      String mediaType, String digest, byte[] raw, Descriptor config, List<Descriptor> layers) {}

  private final String registry;
  private final Options options;
  private final URI base;
  private final HttpClient http;
  private final Map<String, String> authorization = new ConcurrentHashMap<>();

  public RegistryClient(String registry, Options options) {
    this.registry = registry;
    this.options = options;
    this.base = URI.create((plainHttp(registry, options) ? "http://" : "https://") + registry);
    this.http =
        HttpClient.newBuilder()
            .followRedirects(HttpClient.Redirect.NORMAL)
            .connectTimeout(Duration.ofSeconds(15))
            .build();
  }

  static boolean plainHttp(String registry, Options options) {
    if (options.insecure().contains(registry)) {
      return true;
    }
    String host =
        registry.startsWith("[") ? registry.substring(1, registry.indexOf(']')) : registry;
    if (!registry.startsWith("[") && host.contains(":")) {
      host = host.substring(0, host.lastIndexOf(':'));
    }
    if (host.equals("localhost")) {
      return true;
    }
    try {
      return host.matches("[0-9.]+|[0-9a-fA-F:]+")
          && InetAddress.getByName(host).isLoopbackAddress();
    } catch (IOException e) {
      return false;
    }
  }

  public String registry() {
    return registry;
  }

  // ---- reading -------------------------------------------------------------------------------

  /**
   * The manifest {@code ref} names; an image index or manifest list is resolved to the options'
   * platform.
   *
   * @throws RegistryException for a missing image, a refused request, a manifest that is not what
   *     its digest says, a schema 1 manifest, or an index without the platform
   */
  public Manifest manifest(RegistryRef ref) throws IOException {
    Manifest m = fetchManifest(ref.repository(), ref.reference(), ref.digest());
    if (m.config() != null) {
      return m;
    }
    JsonNode index = JSON.readTree(m.raw());
    List<String> seen = new ArrayList<>();
    String[] want = options.platform().split("/");
    for (JsonNode d : index.path("manifests")) {
      JsonNode p = d.path("platform");
      String os = p.path("os").asText();
      String arch = p.path("architecture").asText();
      String variant = p.path("variant").asText("");
      seen.add(os + "/" + arch + (variant.isEmpty() ? "" : "/" + variant));
      if (os.equals(want[0])
          && arch.equals(want[1])
          && (want.length < 3 || variant.equals(want[2]))) {
        Manifest chosen =
            fetchManifest(ref.repository(), d.path("digest").asText(), d.path("digest").asText());
        if (chosen.config() == null) {
          throw new RegistryException(
              ref + ": the index's entry for " + options.platform() + " is an index again", 0);
        }
        return chosen;
      }
    }
    throw new RegistryException(
        ref
            + " has no image for "
            + options.platform()
            + " (it has "
            + seen
            + "): choose one with --platform",
        0);
  }

  private Manifest fetchManifest(String repository, String reference, String expected)
      throws IOException {
    String path = "/v2/" + repository + "/manifests/" + reference;
    HttpResponse<InputStream> r =
        send(
            "GET",
            path,
            scope(repository, false),
            HttpRequest.BodyPublishers.noBody(),
            Map.of("Accept", ACCEPT));
    byte[] body = readLimited(r, MAX_METADATA, path);
    String digest = "sha256:" + sha256(body);
    if (expected != null && !expected.equals(digest) && expected.startsWith("sha256:")) {
      throw new RegistryException(
          registry + path + ": the manifest's content is " + digest + ", not " + expected, 200);
    }
    String said = r.headers().firstValue("Docker-Content-Digest").orElse(null);
    if (said != null && said.startsWith("sha256:") && !said.equals(digest)) {
      throw new RegistryException(
          registry + path + ": the manifest's content is " + digest + ", the registry says " + said,
          200);
    }
    JsonNode doc;
    try {
      doc = JSON.readTree(body);
    } catch (IOException e) {
      throw new RegistryException(registry + path + ": the manifest is not JSON", 200);
    }
    if (doc.path("schemaVersion").asInt() == 1) {
      throw new RegistryException(
          registry + path + ": a schema 1 manifest (obsolete, unsigned layers): not supported",
          200);
    }
    String mediaType = doc.path("mediaType").asText("");
    if (mediaType.isEmpty()) {
      mediaType = r.headers().firstValue("Content-Type").orElse("").split(";")[0].strip();
    }
    if (doc.has("manifests")) {
      return new Manifest(mediaType, digest, body, null, List.of());
    }
    if (!doc.has("config") || !doc.path("layers").isArray()) {
      throw new RegistryException(
          registry + path + ": not an image manifest (no config or layers)", 200);
    }
    List<Descriptor> layers = new ArrayList<>();
    for (JsonNode l : doc.path("layers")) {
      layers.add(descriptor(l, registry + path));
    }
    return new Manifest(
        mediaType, digest, body, descriptor(doc.path("config"), registry + path), layers);
  }

  private static Descriptor descriptor(JsonNode d, String where) throws RegistryException {
    String digest = d.path("digest").asText("");
    if (!digest.matches("sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")) {
      throw new RegistryException(where + ": a descriptor with a bad digest '" + digest + "'", 200);
    }
    return new Descriptor(d.path("mediaType").asText(""), digest, d.path("size").asLong(-1));
  }

  /** A small blob (an image config) whole, checked against {@code digest}. */
  public byte[] blob(String repository, String digest) throws IOException {
    String path = "/v2/" + repository + "/blobs/" + digest;
    HttpResponse<InputStream> r =
        send("GET", path, scope(repository, false), HttpRequest.BodyPublishers.noBody(), Map.of());
    byte[] body = readLimited(r, MAX_METADATA, path);
    if (digest.startsWith("sha256:") && !digest.equals("sha256:" + sha256(body))) {
      throw new RegistryException(
          registry + path + ": the blob's content is sha256:" + sha256(body) + ", not " + digest,
          200);
    }
    return body;
  }

  /** A blob as it streams in; the caller checks its digest as it reads (the importer does). */
  public InputStream openBlob(String repository, String digest) throws IOException {
    String path = "/v2/" + repository + "/blobs/" + digest;
    return send(
            "GET", path, scope(repository, false), HttpRequest.BodyPublishers.noBody(), Map.of())
        .body();
  }

  // ---- writing -------------------------------------------------------------------------------

  /** Whether the repository has the blob already (then it need not be uploaded). */
  public boolean hasBlob(String repository, String digest) throws IOException {
    String path = "/v2/" + repository + "/blobs/" + digest;
    try {
      HttpResponse<InputStream> r =
          send(
              "HEAD", path, scope(repository, true), HttpRequest.BodyPublishers.noBody(), Map.of());
      r.body().close();
      return true;
    } catch (RegistryException e) {
      if (e.status() == 404) {
        return false;
      }
      throw e;
    }
  }

  /** Uploads {@code file} as the blob {@code digest}, in one request after the upload opens. */
  public void uploadBlob(String repository, String digest, Path file) throws IOException {
    String scope = scope(repository, true);
    HttpResponse<InputStream> opened =
        send(
            "POST",
            "/v2/" + repository + "/blobs/uploads/",
            scope,
            HttpRequest.BodyPublishers.noBody(),
            Map.of());
    opened.body().close();
    String location =
        opened
            .headers()
            .firstValue("Location")
            .orElseThrow(
                () ->
                    new RegistryException(registry + ": an upload opened without a Location", 202));
    URI at = base.resolve(location);
    String target =
        at.toString()
            + (at.getQuery() == null ? "?" : "&")
            + "digest="
            + URLEncoder.encode(digest, StandardCharsets.UTF_8);
    HttpResponse<InputStream> put =
        send(
            "PUT",
            target,
            scope,
            HttpRequest.BodyPublishers.ofFile(file),
            Map.of("Content-Type", "application/octet-stream"));
    put.body().close();
  }

  /** Puts a manifest under {@code reference} (a tag); returns its digest as the registry says. */
  public String putManifest(String repository, String reference, String mediaType, byte[] body)
      throws IOException {
    HttpResponse<InputStream> r =
        send(
            "PUT",
            "/v2/" + repository + "/manifests/" + reference,
            scope(repository, true),
            HttpRequest.BodyPublishers.ofByteArray(body),
            Map.of("Content-Type", mediaType));
    r.body().close();
    return r.headers().firstValue("Docker-Content-Digest").orElse("sha256:" + sha256(body));
  }

  // ---- HTTP, auth and retries ----------------------------------------------------------------

  private static String scope(String repository, boolean push) {
    return "repository:" + repository + ":" + (push ? "pull,push" : "pull");
  }

  /**
   * Sends a request (to a path on the registry, or to an absolute URL it gave), authenticating as
   * the registry asks and retrying what fails for a moment; answers other than 2xx end as a {@link
   * RegistryException} with the registry's own error.
   */
  private HttpResponse<InputStream> send(
      String method,
      String pathOrUrl,
      String scope,
      HttpRequest.BodyPublisher body,
      Map<String, String> headers)
      throws IOException {
    URI uri = pathOrUrl.startsWith("http") ? URI.create(pathOrUrl) : base.resolve(pathOrUrl);
    boolean idempotent = !method.equals("POST");
    boolean authenticated = false;
    IOException last = null;
    for (int attempt = 1; attempt <= options.attempts(); attempt++) {
      HttpRequest.Builder b =
          HttpRequest.newBuilder(uri).timeout(options.timeout()).method(method, body);
      headers.forEach(b::header);
      String auth = authorization.get(scope);
      if (auth != null) {
        b.header("Authorization", auth);
      }
      HttpResponse<InputStream> r;
      try {
        r = http.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted: " + method + " " + uri);
      } catch (IOException e) {
        last = e;
        if (!idempotent && attempt > 1) {
          break;
        }
        backoff(attempt);
        continue;
      }
      int status = r.statusCode();
      if (status == 401 && !authenticated) {
        String challenge = r.headers().firstValue("WWW-Authenticate").orElse("");
        r.body().close();
        authenticate(challenge, scope, uri);
        authenticated = true;
        attempt--; // the retry with credentials is not a failure
        continue;
      }
      if ((status == 429 || status >= 500) && attempt < options.attempts()) {
        r.body().close();
        backoff(attempt);
        continue;
      }
      if (status / 100 != 2) {
        throw new RegistryException(
            registry + ": " + method + " " + uri.getPath() + ": " + status + " " + errorOf(r),
            status);
      }
      return r;
    }
    throw new RegistryException(
        registry
            + ": "
            + method
            + " "
            + uri.getPath()
            + " failed after "
            + options.attempts()
            + " tries: "
            + (last == null ? "no answer" : last.toString()),
        0);
  }

  private static void backoff(int attempt) throws InterruptedIOException {
    try {
      Thread.sleep(Math.min(4000, 200L << (attempt - 1)));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while retrying");
    }
  }

  /** The registry's error list ({"errors": [{"code", "message"}]}), or what it said. */
  private static String errorOf(HttpResponse<InputStream> r) {
    try (InputStream in = r.body()) {
      byte[] b = in.readNBytes(64 << 10);
      try {
        JsonNode errors = JSON.readTree(b).path("errors");
        List<String> out = new ArrayList<>();
        for (JsonNode e : errors) {
          out.add(e.path("code").asText() + ": " + e.path("message").asText());
        }
        if (!out.isEmpty()) {
          return String.join("; ", out);
        }
      } catch (IOException notJson) {
        // say what it said
      }
      String text = new String(b, StandardCharsets.UTF_8).strip();
      return text.length() > 200 ? text.substring(0, 200) + "..." : text;
    } catch (IOException e) {
      return "";
    }
  }

  /** Answers a 401's challenge: Basic with the user's credentials, or a Bearer token for scope. */
  private void authenticate(String challenge, String scope, URI uri) throws IOException {
    String creds = credentials();
    String basic =
        creds == null
            ? null
            : "Basic " + Base64.getEncoder().encodeToString(creds.getBytes(StandardCharsets.UTF_8));
    String lower = challenge.toLowerCase(Locale.ROOT);
    if (lower.startsWith("basic")) {
      if (basic == null) {
        throw new RegistryException(
            registry
                + " asks for a user name and password for "
                + uri.getPath()
                + ": give --creds USER:PASSWORD, or log in with docker login (~/.docker/config.json)",
            401);
      }
      authorization.put(scope, basic);
      return;
    }
    if (!lower.startsWith("bearer")) {
      throw new RegistryException(
          registry + " answered 401 with a challenge Skiff does not know: '" + challenge + "'",
          401);
    }
    Map<String, String> p = challengeParams(challenge.substring("bearer".length()));
    String realm = p.get("realm");
    if (realm == null) {
      throw new RegistryException(registry + ": a Bearer challenge without a realm", 401);
    }
    StringBuilder url = new StringBuilder(realm);
    url.append(realm.contains("?") ? "&" : "?");
    if (p.containsKey("service")) {
      url.append("service=")
          .append(URLEncoder.encode(p.get("service"), StandardCharsets.UTF_8))
          .append('&');
    }
    url.append("scope=")
        .append(URLEncoder.encode(p.getOrDefault("scope", scope), StandardCharsets.UTF_8));
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(url.toString())).timeout(options.timeout()).GET();
    if (basic != null) {
      b.header("Authorization", basic);
    }
    HttpResponse<byte[]> r;
    try {
      r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted fetching a token");
    }
    if (r.statusCode() / 100 != 2) {
      throw new RegistryException(
          registry
              + ": its token service "
              + realm
              + " refused "
              + (basic == null ? "an anonymous request" : "these credentials")
              + " for "
              + scope
              + " ("
              + r.statusCode()
              + ")"
              + (basic == null ? ": give --creds USER:PASSWORD or docker login" : ""),
          401);
    }
    JsonNode t = JSON.readTree(r.body());
    String token = t.path("token").asText(t.path("access_token").asText(""));
    if (token.isEmpty()) {
      throw new RegistryException(registry + ": its token service answered without a token", 401);
    }
    authorization.put(scope, "Bearer " + token);
  }

  static Map<String, String> challengeParams(String s) {
    Map<String, String> out = new LinkedHashMap<>();
    var m = java.util.regex.Pattern.compile("([A-Za-z]+)=\"([^\"]*)\"").matcher(s);
    while (m.find()) {
      out.put(m.group(1).toLowerCase(Locale.ROOT), m.group(2));
    }
    return out;
  }

  /**
   * USER:PASSWORD for this registry: the options', else from Docker's config file as Docker reads
   * it (the credential helper {@code credHelpers} names for this registry, else the {@code
   * credsStore} helper, else {@code auths}); or null.
   */
  String credentials() throws IOException {
    if (options.credentials() != null) {
      return options.credentials();
    }
    Path config = options.dockerConfig();
    if (config == null || !Files.isRegularFile(config)) {
      return null;
    }
    JsonNode root = JSON.readTree(config.toFile());
    JsonNode auths = root.path("auths");
    List<String> keys =
        registry.equals(RegistryRef.DOCKER_HUB)
            ? List.of("https://index.docker.io/v1/", "index.docker.io", "docker.io", registry)
            : List.of(
                registry,
                "https://" + registry,
                "http://" + registry,
                "https://" + registry + "/v2/");
    String helper = null;
    for (String k : keys) {
      if (root.path("credHelpers").hasNonNull(k)) {
        helper = root.path("credHelpers").path(k).asText();
        break;
      }
    }
    if (helper == null && root.hasNonNull("credsStore")) {
      helper = root.path("credsStore").asText();
    }
    if (helper != null && !helper.isBlank()) {
      String fromHelper =
          fromHelper(
              helper,
              registry.equals(RegistryRef.DOCKER_HUB) ? "https://index.docker.io/v1/" : registry,
              options.helperPath());
      if (fromHelper != null) {
        return fromHelper;
      }
    }
    for (String k : keys) {
      JsonNode a = auths.path(k);
      if (a.hasNonNull("auth")) {
        return new String(
            Base64.getDecoder().decode(a.path("auth").asText()), StandardCharsets.UTF_8);
      }
      if (a.hasNonNull("username")) {
        return a.path("username").asText() + ":" + a.path("password").asText();
      }
    }
    return null;
  }

  /**
   * Asks Docker's credential helper {@code name} ({@code docker-credential-NAME get}, found on
   * {@code path}) for {@code server}'s credentials: USER:PASSWORD, or null where it has none.
   */
  String fromHelper(String name, String server, String path) throws IOException {
    if (!name.matches("[A-Za-z0-9._-]+")) {
      throw new RegistryException(
          "Docker's config names a credential helper '" + name + "' that cannot be a program", 401);
    }
    Path bin = null;
    for (String dir : path.split(":")) {
      if (!dir.startsWith("/")) {
        continue; // a relative PATH entry would run whatever the working directory holds
      }
      Path p = Path.of(dir, "docker-credential-" + name);
      if (Files.isExecutable(p)) {
        bin = p;
        break;
      }
    }
    if (bin == null) {
      if (!missingHelperSaid) {
        missingHelperSaid = true;
        LOG.warn(
            "{}: Docker's config names the credential helper {}, but docker-credential-{} is not"
                + " on the PATH; going on without it",
            registry,
            name,
            name);
      }
      return null;
    }
    Process p = new ProcessBuilder(bin.toString(), "get").start();
    var outRead = readAsync(p.getInputStream());
    var errRead = readAsync(p.getErrorStream());
    byte[] out;
    byte[] err;
    try {
      try (var in = p.getOutputStream()) {
        in.write(server.getBytes(StandardCharsets.UTF_8));
      } catch (IOException exitedBeforeReading) {
        // A helper that answers without reading the name (one with nothing for anyone) may be
        // gone before it is written: what it said and its exit status tell.
      }
      if (!p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new RegistryException(
            registry + ": credential helper " + name + " did not answer in 30 s", 401);
      }
      out = outRead.get(5, java.util.concurrent.TimeUnit.SECONDS);
      err = errRead.get(5, java.util.concurrent.TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("waiting for credential helper " + name);
    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
      p.destroyForcibly();
      throw new RegistryException(registry + ": reading credential helper " + name + ": " + e, 401);
    }
    String said =
        (new String(out, StandardCharsets.UTF_8) + " " + new String(err, StandardCharsets.UTF_8))
            .strip();
    if (p.exitValue() != 0) {
      if (said.toLowerCase(Locale.ROOT).contains("credentials not found")) {
        return null; // the helper has nothing for this registry
      }
      throw new RegistryException(
          registry
              + ": credential helper "
              + name
              + " failed (exit "
              + p.exitValue()
              + "): "
              + (said.length() > 200 ? said.substring(0, 200) + "..." : said),
          401);
    }
    JsonNode c;
    try {
      c = JSON.readTree(out);
    } catch (IOException e) {
      throw new RegistryException(
          registry + ": credential helper " + name + " answered something other than JSON", 401);
    }
    String user = c.path("Username").asText("");
    String secret = c.path("Secret").asText("");
    if (user.equals("<token>")) {
      throw new RegistryException(
          registry
              + ": credential helper "
              + name
              + " holds an identity token, which Skiff cannot use yet: give --creds USER:PASSWORD",
          401);
    }
    return user.isEmpty() && secret.isEmpty() ? null : user + ":" + secret;
  }

  private boolean missingHelperSaid;

  /** A process's output, read on a thread of its own (at most 64 KiB). */
  private static java.util.concurrent.Future<byte[]> readAsync(InputStream in) {
    java.util.concurrent.FutureTask<byte[]> t =
        new java.util.concurrent.FutureTask<>(
            () -> {
              try (in) {
                return in.readNBytes(1 << 16);
              }
            });
    Thread.ofVirtual().name("skiff-credential-helper").start(t);
    return t;
  }

  private byte[] readLimited(HttpResponse<InputStream> r, int max, String path) throws IOException {
    try (InputStream in = r.body()) {
      byte[] b = in.readNBytes(max + 1);
      if (b.length > max) {
        throw new RegistryException(
            registry + path + ": over " + (max >> 20) + " MiB, too large for a manifest or config",
            200);
      }
      return b;
    }
  }

  static String sha256(byte[] b) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
