package dev.skiff.runtime.build;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.NoSuchImageException;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.registry.RegistryClient;
import dev.skiff.casfs.registry.RegistryRef;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.S3Location;
import dev.skiff.runtime.ExitStatus;
import dev.skiff.runtime.Sandbox;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxProcess;
import dev.skiff.runtime.SandboxRuntime;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Builds an image from a Dockerfile, step by step, into the store: {@code FROM} (an image of the
 * store, {@code docker://...} pulled into it, or {@code debootstrap://SUITE[?include=PKG,PKG]}, a
 * Debian base made from this host's apt mirror once and kept), {@code RUN} in a gVisor sandbox on
 * the image so far (network on, for apt and pip) whose writes become the next layer, {@code COPY}
 * from the context, {@code ADD} (the same, local tar archives unpacked, and files fetched from
 * URLs), and {@code ENV}, {@code WORKDIR}, {@code USER}, {@code CMD}, {@code ENTRYPOINT}, {@code
 * LABEL}, {@code ARG}.
 *
 * <p>Each {@code RUN} and {@code COPY} is cached in the store under a key of the image it starts
 * from (its index digest), the step's text, the environment it runs with, and the content of what
 * it copies: a rebuild with nothing changed runs nothing, and a changed step reruns from there on.
 * Every host that shares the store shares the cache; hosts with stores of their own share it
 * through a bucket ({@link SharedCache}): a step found there is fetched (only the last one of a run
 * of cached steps, and only when a later step must run or the build ends), and every step built
 * here, and every debootstrap base made here, is pushed there.
 */
public final class ImageBuilder {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String CACHE = "skiff-build-cache";

  private final ImageStore store;
  private final SandboxRuntime rt;
  private final Consumer<String> log;
  private final RegistryClient.Options registry;
  private final SharedCache sharedCache;

  /**
   * The shared cache this build uses: none once a fetch from it failed (the build goes on here).
   */
  private SharedCache shared;

  /**
   * A bucket that build steps are shared through, looked in after the store: {@code remote} is a
   * client for {@code where}.
   */
  public record SharedCache(BlobStore remote, S3Location where) {}

  /** What a build did. */
  public record Result(ImageRef image, Digest index, int steps, int cached, double seconds) {}

  /** Build failed at {@code line}: what, and what to do. */
  public static final class BuildException extends IOException {
    public BuildException(String message) {
      super(message);
    }
  }

  public ImageBuilder(ImageStore store, SandboxRuntime rt, Consumer<String> log) {
    this(store, rt, log, RegistryClient.Options.defaults());
  }

  /**
   * A builder that pulls {@code FROM docker://...} bases with {@code registry}'s options (a worker
   * building for a client passes no Docker config: its own credentials are not the client's).
   */
  public ImageBuilder(
      ImageStore store, SandboxRuntime rt, Consumer<String> log, RegistryClient.Options registry) {
    this(store, rt, log, registry, null);
  }

  /** A builder that also finds and shares steps in {@code shared} (null: the store only). */
  public ImageBuilder(
      ImageStore store,
      SandboxRuntime rt,
      Consumer<String> log,
      RegistryClient.Options registry,
      SharedCache shared) {
    this.store = store;
    this.rt = rt;
    this.log = log;
    this.registry = registry;
    this.sharedCache = shared;
  }

  /** A step found in the shared cache that could not be fetched from it. */
  private static final class SharedFetchFailed extends IOException {
    SharedFetchFailed(String message, IOException cause) {
      super(message, cause);
    }
  }

  /** Steps found in the shared cache and not fetched yet: their index digests there. */
  private final Map<ImageRef, Digest> inShared = new java.util.HashMap<>();

  /** The index digest of a step or base: in the store, else found in the shared cache. */
  private Digest digestOf(ImageRef ref) throws IOException {
    Digest d = inShared.get(ref);
    return d != null ? d : store.resolve(ref).orElseThrow();
  }

  /** Makes a step found in the shared cache an image of the store: its index and packs. */
  private void fetchIfShared(ImageRef ref) throws IOException {
    Digest d = inShared.remove(ref);
    if (d != null && store.resolve(ref).filter(d::equals).isEmpty()) {
      long t0 = System.nanoTime();
      long bytes;
      try {
        bytes = store.fetch(shared.remote(), shared.where(), ref, d);
      } catch (java.io.InterruptedIOException e) {
        throw e;
      } catch (IOException e) {
        throw new SharedFetchFailed(
            "could not fetch " + ref + " from " + shared.where().url() + ": " + e.getMessage(), e);
      }
      log.accept(
          String.format(
              java.util.Locale.ROOT,
              "  fetched %s from %s (%.1f MB) in %.2f s",
              ref,
              shared.where().url(),
              bytes / 1e6,
              (System.nanoTime() - t0) / 1e9));
    }
  }

  /** The digest the shared cache holds for {@code ref}, if any; a cache that fails is a miss. */
  private Optional<Digest> lookUpShared(ImageRef ref) {
    if (shared == null) {
      return Optional.empty();
    }
    try {
      return Optional.of(ImageStore.remoteTag(shared.remote(), shared.where(), ref));
    } catch (NoSuchImageException e) {
      return Optional.empty();
    } catch (IOException | RuntimeException e) {
      log.accept(
          "  (the shared cache "
              + shared.where().url()
              + " did not answer: "
              + e.getMessage()
              + "; building here)");
      return Optional.empty();
    }
  }

  /** Pushes a step built here to the shared cache; a cache that fails only costs other hosts. */
  private void share(ImageRef ref) {
    if (shared == null) {
      return;
    }
    try {
      store.push(ref, shared.remote(), ImageStore.PushProgress.NONE);
    } catch (IOException | RuntimeException e) {
      log.accept(
          "  (could not share "
              + ref
              + " with "
              + shared.where().url()
              + ": "
              + e.getMessage()
              + ")");
    }
  }

  /**
   * Builds {@code dockerfile} with {@code context} and tags the image {@code target}.
   *
   * @param force run every step, cached or not
   */
  public Result build(
      String dockerfile,
      Path context,
      ImageRef target,
      Map<String, String> buildArgs,
      boolean force)
      throws IOException {
    try {
      shared = sharedCache;
      inShared.clear();
      try {
        return buildSteps(dockerfile, context, target, buildArgs, force);
      } catch (SharedFetchFailed e) {
        // A step the bucket lists and cannot give (a pack a lifecycle rule removed, the bucket
        // gone since): the build starts over without it; what was fetched stays cached here.
        log.accept("  (" + e.getMessage() + "; building here without the shared cache)");
        shared = null;
        inShared.clear();
        return buildSteps(dockerfile, context, target, buildArgs, force);
      }
    } finally {
      for (Path f : fetched.values()) {
        Files.deleteIfExists(f);
      }
      fetched.clear();
    }
  }

  private Result buildSteps(
      String dockerfile,
      Path context,
      ImageRef target,
      Map<String, String> buildArgs,
      boolean force)
      throws IOException {
    long t0 = System.nanoTime();
    List<Dockerfile.Instruction> steps = Dockerfile.parse(dockerfile);
    Map<String, String> args = new LinkedHashMap<>();
    ImageRef current = null;
    ObjectNode config = null;
    int runOrCopy = 0;
    int cached = 0;
    for (Dockerfile.Instruction ins : steps) {
      String where = "line " + ins.line() + " (" + ins.keyword() + ")";
      Map<String, String> vars = new LinkedHashMap<>(args);
      if (config != null) {
        env(config).forEach(vars::put);
      }
      String a = ins.keyword().equals("RUN") ? ins.args() : Dockerfile.substitute(ins.args(), vars);
      if (current == null && !ins.keyword().equals("FROM") && !ins.keyword().equals("ARG")) {
        throw new BuildException(where + ": the first instruction must be FROM");
      }
      switch (ins.keyword()) {
        case "ARG" -> {
          int eq = a.indexOf('=');
          String name = eq < 0 ? a : a.substring(0, eq);
          args.put(name, buildArgs.getOrDefault(name, eq < 0 ? "" : a.substring(eq + 1)));
        }
        case "FROM" -> {
          current = from(a.split("\\s+")[0]);
          config = configOf(current);
          log.accept("FROM " + current);
        }
        case "ENV" -> {
          for (var e : pairs(a, where).entrySet()) {
            setEnv(config, e.getKey(), e.getValue());
          }
        }
        case "LABEL" -> {
          ObjectNode labels = inner(config).with("Labels");
          pairs(a, where).forEach(labels::put);
        }
        case "WORKDIR" -> {
          String wd =
              a.startsWith("/") ? a : inner(config).path("WorkingDir").asText("/") + "/" + a;
          inner(config).put("WorkingDir", Path.of(wd).normalize().toString());
        }
        case "USER" -> inner(config).put("User", a);
        case "EXPOSE" -> {
          ObjectNode ports = inner(config).with("ExposedPorts");
          for (String port : a.split("\\s+")) {
            ports.putObject(port.contains("/") ? port : port + "/tcp");
          }
        }
        case "VOLUME" -> {
          ObjectNode volumes = inner(config).with("Volumes");
          if (a.startsWith("[")) {
            command(a, where).forEach(v -> volumes.putObject(v.asText()));
          } else {
            for (String v : a.split("\\s+")) {
              volumes.putObject(v);
            }
          }
        }
        case "STOPSIGNAL" -> inner(config).put("StopSignal", a);
        case "CMD", "ENTRYPOINT" -> {
          inner(config).set(ins.keyword().equals("CMD") ? "Cmd" : "Entrypoint", command(a, where));
          if (ins.keyword().equals("ENTRYPOINT")) {
            inner(config).remove("Cmd");
          }
        }
        case "RUN", "COPY", "ADD" -> {
          runOrCopy++;
          String inputs =
              ins.keyword().equals("RUN") ? "" : inputsDigest(context, ins.keyword(), a, where);
          String key =
              sha256(
                  (digestOf(current)
                          + "\n"
                          + ins.keyword()
                          + " "
                          + a
                          + "\n"
                          + JSON.writeValueAsString(inner(config))
                          + "\n"
                          // build arguments reach RUN steps as their environment; a COPY
                          // sees them only where its text named them (substituted above)
                          + (ins.keyword().equals("RUN") ? args : "")
                          + "\n"
                          + inputs)
                      .getBytes(StandardCharsets.UTF_8));
          ImageRef step = ImageRef.parse(CACHE + ":" + key);
          Optional<Digest> sharedStep = Optional.empty();
          if (!force && store.resolve(step).isPresent()) {
            log.accept(ins + "   (cached)");
            cached++;
          } else if (!force && (sharedStep = lookUpShared(step)).isPresent()) {
            log.accept(ins + "   (cached in " + shared.where().url() + ")");
            inShared.put(step, sharedStep.get());
            cached++;
          } else {
            log.accept(ins.toString());
            fetchIfShared(current);
            if (ins.keyword().equals("RUN")) {
              run(current, config, args, a, step, where);
            } else {
              copy(current, config, context, ins.keyword(), a, step, where);
            }
            share(step);
          }
          current = step;
        }
        default ->
            throw new BuildException(
                where
                    + ": "
                    + ins.keyword()
                    + " is not supported (FROM, RUN, COPY, ADD, ENV, WORKDIR,"
                    + " USER, CMD, ENTRYPOINT, LABEL, ARG, EXPOSE, VOLUME, STOPSIGNAL are)");
      }
    }
    if (current == null) {
      throw new BuildException("the Dockerfile has no FROM");
    }
    fetchIfShared(current);
    // The image: the last step's tree with the config as it ends (cached too, so that a rebuild
    // with nothing changed only tags).
    byte[] finalConfig = JSON.writeValueAsBytes(config);
    ImageRef last =
        ImageRef.parse(
            CACHE
                + ":"
                + sha256(
                    (store.resolve(current).orElseThrow()
                            + "\nIMAGE\n"
                            + new String(finalConfig, StandardCharsets.UTF_8))
                        .getBytes(StandardCharsets.UTF_8)));
    if (current.name().equals(CACHE)
        && Arrays.equals(
            finalConfig, configOf(current).toString().getBytes(StandardCharsets.UTF_8))) {
      last = current; // the last step's image has this config already: nothing to import
    } else if (force || store.resolve(last).isEmpty()) {
      // the last step's files with the config as it ends: a new index, no file read again
      store.reconfigure(
          store.resolve(current).orElseThrow(), finalConfig, "skiff build of " + target, last);
    }
    Digest index = store.resolve(last).orElseThrow();
    store.tag(target, index, "skiff build", 0);
    double secs = (System.nanoTime() - t0) / 1e9;
    log.accept(
        String.format(
            java.util.Locale.ROOT,
            "built %s (%d of %d steps cached) in %.2f s",
            target,
            cached,
            runOrCopy,
            secs));
    return new Result(target, index, runOrCopy, cached, secs);
  }

  private ImageRef from(String image) throws IOException {
    if (DebianBase.is(image)) {
      ImageRef base = DebianBase.Spec.parse(image).ref();
      if (store.resolve(base).isEmpty()) {
        Optional<Digest> there = lookUpShared(base);
        if (there.isPresent()) {
          inShared.put(base, there.get());
          fetchIfShared(base); // its config is read at once, and every later step stands on it
          return base;
        }
        DebianBase.ensure(store, image, log);
        share(base);
      }
      return base;
    }
    if (RegistryRef.is(image)) {
      RegistryRef ref = RegistryRef.parse(image);
      ImageRef base =
          ImageRef.parse(
              CACHE + ":from-" + sha256(image.getBytes(StandardCharsets.UTF_8)).substring(0, 40));
      if (store.resolve(base).isEmpty() || ref.digest() == null) {
        store.pullFromRegistry(ref, registry, base, ImportProgress.NONE);
      }
      return base;
    }
    ImageRef ref = ImageRef.parse(image);
    if (store.resolve(ref).isEmpty()) {
      throw new BuildException(
          "FROM "
              + image
              + ": no such image in the store (import or pull it first, or FROM docker://...)");
    }
    return ref;
  }

  private ObjectNode configOf(ImageRef ref) throws IOException {
    try (ImageIndex index = store.openIndex(store.resolve(ref).orElseThrow())) {
      String c = index.meta("config");
      ObjectNode o =
          c == null || c.isBlank() ? JSON.createObjectNode() : (ObjectNode) JSON.readTree(c);
      o.remove("rootfs");
      o.remove("history");
      return o;
    }
  }

  private static ObjectNode inner(ObjectNode config) {
    return config.with("config");
  }

  private static Map<String, String> env(ObjectNode config) {
    Map<String, String> out = new LinkedHashMap<>();
    for (JsonNode e : inner(config).path("Env")) {
      String s = e.asText();
      int eq = s.indexOf('=');
      if (eq > 0) {
        out.put(s.substring(0, eq), s.substring(eq + 1));
      }
    }
    return out;
  }

  private static void setEnv(ObjectNode config, String name, String value) {
    Map<String, String> env = env(config);
    env.put(name, value);
    ArrayNode a = inner(config).putArray("Env");
    env.forEach((k, v) -> a.add(k + "=" + v));
  }

  /** {@code K=V K2="V 2"} or the old {@code K V} form. */
  static Map<String, String> pairs(String a, String where) throws BuildException {
    Map<String, String> out = new LinkedHashMap<>();
    if (!a.contains("=")) {
      int space = a.indexOf(' ');
      if (space < 0) {
        throw new BuildException(where + ": want NAME=VALUE");
      }
      out.put(a.substring(0, space), a.substring(space + 1).strip());
      return out;
    }
    int i = 0;
    while (i < a.length()) {
      while (i < a.length() && a.charAt(i) == ' ') {
        i++;
      }
      int eq = a.indexOf('=', i);
      if (eq < 0) {
        throw new BuildException(where + ": want NAME=VALUE, got '" + a.substring(i) + "'");
      }
      String name = a.substring(i, eq);
      StringBuilder v = new StringBuilder();
      int j = eq + 1;
      // as Docker reads them: "double quotes" with backslash escapes, 'single' as written,
      // bare words with backslash escapes (a\ b is one value)
      while (j < a.length() && a.charAt(j) != ' ') {
        char c = a.charAt(j);
        if (c == '"' || c == '\'') {
          j++;
          while (j < a.length() && a.charAt(j) != c) {
            if (c == '"' && a.charAt(j) == '\\' && j + 1 < a.length()) {
              j++;
            }
            v.append(a.charAt(j++));
          }
          if (j >= a.length()) {
            throw new BuildException(where + ": a quote is not closed in '" + a.substring(i) + "'");
          }
          j++;
        } else if (c == '\\' && j + 1 < a.length()) {
          v.append(a.charAt(j + 1));
          j += 2;
        } else {
          v.append(c);
          j++;
        }
      }
      out.put(name, v.toString());
      i = j;
    }
    return out;
  }

  /** A JSON array as it is, or a shell form as {@code ["/bin/sh", "-c", ...]}. */
  private static ArrayNode command(String a, String where) throws BuildException {
    if (a.startsWith("[")) {
      try {
        JsonNode n = JSON.readTree(a);
        if (n.isArray()) {
          return (ArrayNode) n;
        }
      } catch (IOException e) {
        // below
      }
      throw new BuildException(where + ": not a JSON array of strings: " + a);
    }
    ArrayNode out = JSON.createArrayNode();
    out.add("/bin/sh").add("-c").add(a);
    return out;
  }

  // ---- RUN --------------------------------------------------------------------------------------

  private void run(
      ImageRef current,
      ObjectNode config,
      Map<String, String> args,
      String command,
      ImageRef step,
      String where)
      throws IOException {
    Path work = Files.createTempDirectory(store.scratch(), "build-run-");
    Path upper = Files.createDirectory(work.resolve("upper"));
    try {
      SandboxOptions.Builder o =
          SandboxOptions.builder()
              .network(true)
              .captureWrites(upper)
              .entrypoint(List.of("/bin/sh", "-c"));
      args.forEach((k, v) -> o.env(k + "=" + v));
      env(config).forEach((k, v) -> o.env(k + "=" + v));
      String wd = inner(config).path("WorkingDir").asText("");
      if (!wd.isEmpty()) {
        o.workdir(wd);
      }
      String user = inner(config).path("User").asText("");
      if (!user.isEmpty()) {
        o.user(user);
      }
      ExitStatus status;
      java.util.ArrayDeque<String> last = new java.util.ArrayDeque<>();
      ImageSpec parent = ImageSpec.parse(current.toString());
      try (Sandbox sb = rt.run(parent, o.build(), List.of(command), false)) {
        SandboxProcess p = sb.main().orElseThrow();
        OutputStream out =
            lines(
                line -> {
                  log.accept(line);
                  synchronized (last) {
                    last.addLast(line.strip());
                    if (last.size() > 5) {
                      last.removeFirst();
                    }
                  }
                });
        Thread[] pumps = p.pipeTo(out, out);
        status = p.waitFor();
        for (Thread t : pumps) {
          t.join(5_000);
        }
        out.close();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted");
      } finally {
        rt.unneeded(parent); // the next step runs on this one's image, not on its parent
      }
      if (!status.success()) {
        throw new BuildException(
            where
                + ": RUN "
                + command
                + " failed ("
                + status
                + ")"
                + (last.isEmpty() ? "" : ": " + String.join(" / ", last)));
      }
      dropMountPoints(upper);
      store.importOver(
          store.resolve(current).orElseThrow(),
          upper,
          true,
          JSON.writeValueAsBytes(config),
          "RUN " + command,
          step);
    } finally {
      delete(work);
    }
  }

  /**
   * Removes from a step's writes the mount points the sandbox's runtime made (/proc, /sys, /dev, an
   * empty /tmp): not the step's.
   */
  private static void dropMountPoints(Path upper) throws IOException {
    for (String d : List.of("proc", "sys", "dev")) {
      delete(upper.resolve(d));
    }
    Path tmp = upper.resolve("tmp");
    if (Files.isDirectory(tmp, LinkOption.NOFOLLOW_LINKS)) {
      try (Stream<Path> s = Files.list(tmp)) {
        if (s.findAny().isEmpty()) {
          Files.delete(tmp);
        }
      }
    }
  }

  /** An output stream that hands each line to {@code to}. */
  private static OutputStream lines(Consumer<String> to) throws IOException {
    PipedInputStream in = new PipedInputStream(1 << 16);
    PipedOutputStream out = new PipedOutputStream(in);
    Thread.ofVirtual()
        .start(
            () -> {
              try (BufferedReader r =
                  new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                  to.accept("  | " + line);
                }
              } catch (IOException e) {
                // the step ended
              }
            });
    return out;
  }

  // ---- COPY -------------------------------------------------------------------------------------

  /**
   * A source of COPY or ADD: a path of the context, or (ADD) a URL fetched for this build, named by
   * the last part of its path.
   */
  private record Source(Path path, String url, String fileName) {}

  private record Copy(List<Source> sources, String dest) {}

  /** What ADD fetched from URLs in this build, by URL; deleted when the build ends. */
  private final Map<String, Path> fetched = new java.util.HashMap<>();

  private Copy parseCopy(Path context, String keyword, String a, String where) throws IOException {
    List<String> words = new ArrayList<>();
    for (String w : a.split("\\s+")) {
      if (w.startsWith("--")) {
        throw new BuildException(where + ": " + keyword + " options (" + w + ") are not supported");
      }
      words.add(w);
    }
    if (words.size() < 2) {
      throw new BuildException(where + ": want SOURCE... DEST");
    }
    Path root = context.toAbsolutePath().normalize();
    List<Source> sources = new ArrayList<>();
    for (String s : words.subList(0, words.size() - 1)) {
      if (s.contains("://")) {
        if (!keyword.equals("ADD")) {
          throw new BuildException(where + ": COPY takes files of the context; ADD takes URLs");
        }
        sources.add(download(s, where));
        continue;
      }
      Path p = root.resolve(s).normalize();
      if (!p.startsWith(root)) {
        throw new BuildException(where + ": " + s + " is outside the build context");
      }
      if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
        throw new BuildException(where + ": " + s + " is not in the build context " + root);
      }
      sources.add(new Source(p, null, p.getFileName().toString()));
    }
    return new Copy(sources, words.get(words.size() - 1));
  }

  /**
   * Fetches an ADD's URL (once per build): its content keys the step, as a changed file would. An
   * answer other than 200 fails the step.
   */
  private Source download(String url, String where) throws IOException {
    java.net.URI uri;
    try {
      uri = new java.net.URI(url);
    } catch (java.net.URISyntaxException e) {
      throw new BuildException(where + ": not a URL: " + url);
    }
    if (!"http".equals(uri.getScheme()) && !"https".equals(uri.getScheme())) {
      throw new BuildException(where + ": ADD fetches http:// and https:// URLs, not " + url);
    }
    String path = uri.getPath() == null ? "" : uri.getPath();
    String name = path.substring(path.lastIndexOf('/') + 1);
    Path file = fetched.get(url);
    if (file == null) {
      file = Files.createTempFile(store.scratch(), "build-add-", ".download");
      fetched.put(url, file);
      log.accept("  fetching " + url);
      try (java.net.http.HttpClient http =
          java.net.http.HttpClient.newBuilder()
              .followRedirects(java.net.http.HttpClient.Redirect.NORMAL)
              .connectTimeout(java.time.Duration.ofSeconds(30))
              .build()) {
        java.net.http.HttpResponse<java.io.InputStream> r =
            http.send(
                java.net.http.HttpRequest.newBuilder(uri)
                    .timeout(java.time.Duration.ofMinutes(2)) // until the headers come
                    .build(),
                java.net.http.HttpResponse.BodyHandlers.ofInputStream());
        try (java.io.InputStream body = r.body()) {
          if (r.statusCode() != 200) {
            throw new BuildException(
                where + ": ADD " + url + ": the server answered HTTP " + r.statusCode());
          }
          receive(body, file, url, where);
        }
        // As Docker does: the file's time is the server's Last-Modified, when it says one.
        var modified = r.headers().firstValue("Last-Modified");
        if (modified.isPresent()) {
          try {
            Files.setLastModifiedTime(
                file,
                java.nio.file.attribute.FileTime.from(
                    java.time.ZonedDateTime.parse(
                            modified.get(), java.time.format.DateTimeFormatter.RFC_1123_DATE_TIME)
                        .toInstant()));
          } catch (java.time.format.DateTimeParseException ignored) {
            // a time we cannot read: the fetch's
          }
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("ADD " + url + " interrupted");
      } catch (BuildException e) {
        throw e;
      } catch (IOException e) {
        throw new BuildException(where + ": ADD " + url + ": " + e);
      }
    }
    return new Source(file, url, name);
  }

  /** At most this much is fetched for one ADD of a URL. */
  static final long MAX_DOWNLOAD = 16L << 30;

  /** A download that has not moved for this long is given up. */
  static final java.time.Duration DOWNLOAD_STALL = java.time.Duration.ofMinutes(2);

  /**
   * Writes a download's body to {@code file}: at most {@link #MAX_DOWNLOAD} bytes, and given up
   * once it has not moved for {@link #DOWNLOAD_STALL} (the request's timeout ends with the
   * headers).
   */
  private static void receive(java.io.InputStream body, Path file, String url, String where)
      throws IOException {
    java.util.concurrent.atomic.AtomicLong moved =
        new java.util.concurrent.atomic.AtomicLong(System.nanoTime());
    java.util.concurrent.atomic.AtomicBoolean stalled =
        new java.util.concurrent.atomic.AtomicBoolean();
    Thread watchdog =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    while (true) {
                      Thread.sleep(1000);
                      if (System.nanoTime() - moved.get() > DOWNLOAD_STALL.toNanos()) {
                        stalled.set(true);
                        body.close(); // the read below fails
                        return;
                      }
                    }
                  } catch (InterruptedException | IOException done) {
                    // the download ended
                  }
                });
    try (OutputStream out = Files.newOutputStream(file)) {
      byte[] buf = new byte[1 << 16];
      long total = 0;
      for (int n; (n = body.read(buf)) >= 0; ) {
        moved.set(System.nanoTime());
        total += n;
        if (total > MAX_DOWNLOAD) {
          throw new BuildException(
              where + ": ADD " + url + ": larger than " + (MAX_DOWNLOAD >> 30) + " GiB");
        }
        out.write(buf, 0, n);
      }
    } catch (IOException e) {
      if (stalled.get()) {
        throw new BuildException(
            where
                + ": ADD "
                + url
                + ": nothing came for "
                + DOWNLOAD_STALL.toSeconds()
                + " s; given up");
      }
      throw e;
    } finally {
      watchdog.interrupt();
    }
  }

  /** Feeds a file's bytes to {@code md}, a buffer at a time. */
  private static void digestFile(MessageDigest md, Path file) throws IOException {
    try (java.io.InputStream in = Files.newInputStream(file)) {
      byte[] buf = new byte[1 << 16];
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
  }

  /** A digest of what a COPY or ADD reads: each file's path, mode, link target and content. */
  private String inputsDigest(Path context, String keyword, String a, String where)
      throws IOException {
    Copy c = parseCopy(context, keyword, a, where);
    MessageDigest md = sha256();
    Path root = context.toAbsolutePath().normalize();
    for (Source src : c.sources()) {
      if (src.url() != null) {
        md.update(src.url().getBytes(StandardCharsets.UTF_8));
        md.update((byte) 0);
        digestFile(md, src.path());
        md.update((byte) 0);
        continue;
      }
      List<Path> all;
      try (Stream<Path> s = Files.walk(src.path())) {
        all = s.sorted().toList();
      }
      for (Path p : all) {
        md.update(root.relativize(p).toString().getBytes(StandardCharsets.UTF_8));
        md.update(
            Integer.toOctalString(
                    (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS))
                .getBytes(StandardCharsets.UTF_8));
        if (Files.isSymbolicLink(p)) {
          md.update(Files.readSymbolicLink(p).toString().getBytes(StandardCharsets.UTF_8));
        } else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
          digestFile(md, p);
        }
        md.update((byte) 0);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  private void copy(
      ImageRef current,
      ObjectNode config,
      Path context,
      String keyword,
      String a,
      ImageRef step,
      String where)
      throws IOException {
    Copy c = parseCopy(context, keyword, a, where);
    String wd = inner(config).path("WorkingDir").asText("/");
    String dest = c.dest().startsWith("/") ? c.dest() : wd + "/" + c.dest();
    // Into a directory when the destination says so ("dir/", ".", "dir/."), as Docker reads it.
    Source first = c.sources().get(0);
    boolean intoDir =
        dest.endsWith("/")
            || dest.endsWith("/.")
            || c.dest().equals(".")
            || c.sources().size() > 1
            || (first.url() == null && Files.isDirectory(first.path()));
    Path work = Files.createTempDirectory(store.scratch(), "build-copy-");
    Path files = Files.createDirectory(work.resolve("files"));
    try {
      Path target = files.resolve(dest.substring(1)).normalize();
      if (!target.startsWith(files)) {
        throw new BuildException(where + ": destination " + c.dest() + " leaves the image's root");
      }
      List<AddArchive.Owner> owners = new ArrayList<>();
      for (Source src : c.sources()) {
        if (src.url() != null) {
          if (intoDir && src.fileName().isEmpty()) {
            throw new BuildException(
                where + ": " + src.url() + " names no file: give the destination a file name");
          }
          Path to = intoDir ? target.resolve(src.fileName()) : target;
          AddArchive.noLinkBelow(files, to.getParent(), src.url(), where);
          Files.createDirectories(to.getParent());
          Files.copy(src.path(), to, StandardCopyOption.COPY_ATTRIBUTES);
          Files.setAttribute(to, "unix:mode", 0600); // as Docker makes a fetched file
        } else if (keyword.equals("ADD") && AddArchive.isArchive(src.path())) {
          AddArchive.noLinkBelow(files, target, src.fileName(), where);
          owners.addAll(AddArchive.extract(src.path(), target, where));
        } else {
          Path p = src.path();
          Path to =
              intoDir ? (Files.isDirectory(p) ? target : target.resolve(src.fileName())) : target;
          copyTree(p, to, files, where);
        }
      }
      // Files copied in belong to root, as Docker makes them; unpacked ones, to whom the
      // archive says.
      DockerRun.chownRoot(files);
      for (AddArchive.Owner o : owners) {
        Files.setAttribute(o.path(), "unix:uid", o.uid(), LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(o.path(), "unix:gid", o.gid(), LinkOption.NOFOLLOW_LINKS);
      }
      store.importOver(
          store.resolve(current).orElseThrow(),
          files,
          false,
          JSON.writeValueAsBytes(config),
          keyword + " " + a,
          step);
    } finally {
      delete(work);
    }
  }

  /**
   * Copies a file or tree of the context to {@code to}, under {@code files} (the step's tree):
   * never through a link an earlier source made there (an archive's, or the context's own).
   */
  private static void copyTree(Path src, Path to, Path files, String where) throws IOException {
    if (!Files.isDirectory(src, LinkOption.NOFOLLOW_LINKS)) {
      AddArchive.noLinkBelow(files, to.getParent(), src.getFileName().toString(), where);
      Files.createDirectories(to.getParent());
      Files.copy(src, to, StandardCopyOption.COPY_ATTRIBUTES, LinkOption.NOFOLLOW_LINKS);
      return;
    }
    try (Stream<Path> s = Files.walk(src)) {
      for (Path p : s.sorted().toList()) {
        Path t = to.resolve(src.relativize(p).toString());
        AddArchive.noLinkBelow(files, t.getParent(), src.relativize(p).toString(), where);
        if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
          if (Files.isSymbolicLink(t)) {
            throw new BuildException(
                where
                    + ": "
                    + src.relativize(p)
                    + " goes through the link "
                    + files.relativize(t)
                    + " made before it");
          }
          Files.createDirectories(t);
        } else {
          Files.createDirectories(t.getParent());
          Files.copy(p, t, StandardCopyOption.COPY_ATTRIBUTES, LinkOption.NOFOLLOW_LINKS);
        }
      }
    }
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private static void delete(Path p) throws IOException {
    dev.skiff.casfs.util.Trees.delete(p);
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  static String sha256(byte[] b) {
    return HexFormat.of().formatHex(sha256().digest(b));
  }

  /** Small process helpers. */
  private static final class DockerRun {
    private DockerRun() {}

    static void chownRoot(Path dir) throws IOException {
      Process p =
          new ProcessBuilder("chown", "-R", "-h", "0:0", dir.toString())
              .redirectErrorStream(true)
              .start();
      try {
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
          throw new IOException("chown of the copied files failed: " + out.strip());
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted");
      }
    }
  }
}
