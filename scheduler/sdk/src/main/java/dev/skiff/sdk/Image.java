package dev.skiff.sdk;

import dev.skiff.api.ImageSpec;
import dev.skiff.scheduler.CodeBundle;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * The image a function runs on: a name in the scheduler's hosts' stores ({@code myimage:1}), an
 * image in a bucket ({@code s3://bucket/prefix/myimage:1}), or one defined in code, built on first
 * use by a worker through the scheduler, step by step with a step cache, and kept:
 *
 * <pre>{@code
 * Image img = Image.debianSlim("3.11").aptInstall("curl").pipInstall("numpy==2.1.0")
 *     .runCommands("echo hi > /etc/hi").env("K", "V").addLocalDir(Path.of("data"), "/data")
 *     .workdir("/app");
 * }</pre>
 *
 * Each step becomes a Dockerfile instruction ({@link #dockerfile()}) run by the worker's builder
 * (see {@code skiff build}): a rebuild with nothing changed runs no step, and a changed step reruns
 * from there on. Java functions run on the JVM at {@link #jvm(String)} (else {@code java} on the
 * image's PATH). Immutable: each step returns a new image.
 */
public final class Image {
  private static final Pattern APT_PACKAGE = Pattern.compile("[a-z0-9][a-z0-9+.:=~-]*");
  private static final Pattern PIP_REQUIREMENT =
      Pattern.compile("[A-Za-z0-9][A-Za-z0-9._\\-\\[\\],<>=!~* ]*");
  private static final Pattern ENV_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");

  private final ImageSpec spec; // an image by name; null for one defined in steps
  private final String from; // the first step's base, for one defined in steps
  private final List<String> steps;
  private final List<Path> contexts; // local directories the steps copy, in order
  private final String jvm;

  private Image(ImageSpec spec, String from, List<String> steps, List<Path> contexts, String jvm) {
    this.spec = spec;
    this.from = from;
    this.steps = List.copyOf(steps);
    this.contexts = List.copyOf(contexts);
    this.jvm = jvm;
  }

  /**
   * An image by name; its Java functions run on the {@code java} found on the image's PATH.
   *
   * @throws IllegalArgumentException if {@code image} is not an image name
   */
  public static Image of(String image) {
    return new Image(
        ImageSpec.parse(Objects.requireNonNull(image, "image")), null, List.of(), List.of(), "");
  }

  /**
   * A registry's image ({@code docker://registry:5000/library/python:3.11-slim}) as the base of
   * steps, pulled into the building worker's store on first use.
   */
  public static Image fromRegistry(String reference) {
    if (!Objects.requireNonNull(reference, "reference").startsWith("docker://")) {
      throw new IllegalArgumentException(
          "a registry image is docker://HOST[:PORT]/NAME[:TAG], not " + reference);
    }
    if (reference.chars().anyMatch(Character::isWhitespace)) {
      throw new IllegalArgumentException("a registry reference has no spaces: " + reference);
    }
    return new Image(null, reference, List.of(), List.of(), "");
  }

  /**
   * A slim Debian with Python {@code python} and pip: made with {@code debootstrap} from the Debian
   * mirror the building host's apt uses (once, then kept), no registry needed. Python 3.11 is
   * Debian 12 (bookworm)'s, 3.13 Debian 13 (trixie)'s.
   */
  public static Image debianSlim(String python) {
    String suite =
        switch (Objects.requireNonNull(python, "python")) {
          case "3.11" -> "bookworm";
          case "3.13" -> "trixie";
          default ->
              throw new IllegalArgumentException(
                  "Debian has Python 3.11 (bookworm) and 3.13 (trixie), not "
                      + python
                      + ": ask for one of those, or start from Image.fromRegistry(...)");
        };
    return new Image(
        null,
        "debootstrap://" + suite + "?include=python3,python3-pip,ca-certificates",
        List.of(),
        List.of(),
        "");
  }

  /** {@link #debianSlim(String)} with Python 3.11 (Debian 12). */
  public static Image debianSlim() {
    return debianSlim("3.11");
  }

  private Image step(String instruction, Path context) {
    List<String> s = new ArrayList<>(steps);
    s.add(instruction);
    List<Path> c = new ArrayList<>(contexts);
    if (context != null) {
      c.add(context);
    }
    return new Image(null, spec != null ? spec.toString() : from, s, c, jvm);
  }

  /** Installs Debian packages with apt (the image must be Debian's or Ubuntu's). */
  public Image aptInstall(String... packages) {
    if (packages.length == 0) {
      throw new IllegalArgumentException("aptInstall needs at least one package");
    }
    for (String p : packages) {
      if (p == null || !APT_PACKAGE.matcher(p).matches()) {
        throw new IllegalArgumentException("'" + p + "' is not a Debian package name");
      }
    }
    return step(
        "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y"
            + " --no-install-recommends "
            + String.join(" ", packages)
            + " && rm -rf /var/lib/apt/lists/*",
        null);
  }

  /** Installs Python packages with pip from PyPI ({@code numpy==2.1.0}, {@code requests}). */
  public Image pipInstall(String... requirements) {
    return pipInstall(List.of(requirements), null);
  }

  /**
   * Installs Python packages with pip from the package index at {@code indexUrl} (PEP 503, for
   * example {@code http://127.0.0.1:8080/simple}); null is PyPI.
   */
  public Image pipInstall(List<String> requirements, String indexUrl) {
    if (requirements.isEmpty()) {
      throw new IllegalArgumentException("pipInstall needs at least one package");
    }
    StringBuilder cmd =
        new StringBuilder(
            "RUN python3 -m pip install --no-cache-dir --disable-pip-version-check"
                + " --break-system-packages");
    if (indexUrl != null) {
      java.net.URI u;
      try {
        u = java.net.URI.create(indexUrl);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("bad index URL " + indexUrl + ": " + e.getMessage());
      }
      if (u.getHost() == null
          || !(u.getScheme().equals("http") || u.getScheme().equals("https"))
          || indexUrl.contains("'")) {
        throw new IllegalArgumentException("an index URL is http(s)://HOST/..., not " + indexUrl);
      }
      cmd.append(" --index-url '").append(indexUrl).append("'");
      if (u.getScheme().equals("http")) {
        cmd.append(" --trusted-host '").append(u.getHost()).append("'");
      }
    }
    for (String r : requirements) {
      if (r == null || !PIP_REQUIREMENT.matcher(r).matches()) {
        throw new IllegalArgumentException("'" + r + "' is not a pip requirement");
      }
      cmd.append(" '").append(r).append("'");
    }
    return step(cmd.toString(), null);
  }

  /** Runs shell commands, each its own step ({@code /bin/sh -c}), as root. */
  public Image runCommands(String... commands) {
    Image i = this;
    for (String c : commands) {
      if (c == null || c.isBlank() || c.contains("\n") || c.strip().endsWith("\\")) {
        throw new IllegalArgumentException(
            "a command is one line of shell, not ending in a backslash: " + c);
      }
      i = i.step("RUN " + c, null);
    }
    return i;
  }

  /** Sets an environment variable for later steps and for the functions that run on it. */
  public Image env(String key, String value) {
    if (key == null || !ENV_NAME.matcher(key).matches()) {
      throw new IllegalArgumentException("bad environment variable name '" + key + "'");
    }
    if (Objects.requireNonNull(value, "value").contains("\n")) {
      throw new IllegalArgumentException("an environment value is one line");
    }
    // as it is: quotes and backslashes escaped for ENV, and $ kept from substitution
    String escaped = value.replace("\\", "\\\\").replace("\"", "\\\"").replace("$", "\\$");
    return step("ENV " + key + "=\"" + escaped + "\"", null);
  }

  /** Copies a local directory's contents into the image at {@code remote} (an absolute path). */
  public Image addLocalDir(Path local, String remote) {
    if (!Files.isDirectory(Objects.requireNonNull(local, "local"))) {
      throw new IllegalArgumentException("no directory " + local + " to add");
    }
    return step(
        "COPY ctx" + contexts.size() + "/ " + path(remote, "the image's path"),
        local.toAbsolutePath().normalize());
  }

  /** Copies a local directory's contents into the image at {@code remote} (an absolute path). */
  public Image addLocalDir(String local, String remote) {
    return addLocalDir(Path.of(local), remote);
  }

  /** The working directory of later steps and of the functions that run on it. */
  public Image workdir(String path) {
    return step("WORKDIR " + path(path, "a working directory"), null);
  }

  /** An absolute path as a step's argument: no spaces or line ends, and $ kept as it is. */
  private static String path(String p, String what) {
    if (p == null
        || !p.startsWith("/")
        || p.chars().anyMatch(Character::isWhitespace)
        || p.endsWith("\\")) {
      throw new IllegalArgumentException(what + " is an absolute path without spaces: " + p);
    }
    return p.replace("$", "\\$");
  }

  /**
   * This image, its Java functions run by the JVM at {@code java} (say {@code /opt/java/bin/java}).
   */
  public Image jvm(String java) {
    if (java == null || java.isBlank()) {
      throw new IllegalArgumentException("the JVM is a path in the image, or a name on its PATH");
    }
    return new Image(spec, from, steps, contexts, java);
  }

  /** Whether this image is defined in steps, to be built before use. */
  public boolean built() {
    return spec == null;
  }

  /**
   * The image's spec, as the control plane names it.
   *
   * @throws IllegalStateException for an image defined in steps: it has a name once built
   */
  public ImageSpec spec() {
    if (spec == null) {
      throw new IllegalStateException("an image defined in steps is named once it is built");
    }
    return spec;
  }

  /** The Dockerfile of an image defined in steps; empty for an image by name. */
  public String dockerfile() {
    if (spec != null) {
      return "";
    }
    StringBuilder b = new StringBuilder("FROM ").append(from).append('\n');
    steps.forEach(s -> b.append(s).append('\n'));
    return b.toString();
  }

  /**
   * The build context: each directory of {@link #addLocalDir} as {@code ctxN/}, zipped with its
   * entries in order and no times, so the same files make the same zip (and digest); null without
   * any.
   */
  byte[] contextZip() {
    if (contexts.isEmpty()) {
      return null;
    }
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
      for (int i = 0; i < contexts.size(); i++) {
        Path root = contexts.get(i);
        List<Path> files;
        try (Stream<Path> walk = Files.walk(root)) {
          files = walk.sorted().toList();
        }
        for (Path f : files) {
          String name = "ctx" + i + "/" + root.relativize(f).toString().replace('\\', '/');
          if (Files.isDirectory(f, LinkOption.NOFOLLOW_LINKS)) {
            if (!name.endsWith("/")) {
              name += "/";
            }
            ZipEntry e = new ZipEntry(name);
            e.setTime(0);
            zip.putNextEntry(e);
            zip.closeEntry();
          } else if (Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)) {
            ZipEntry e = new ZipEntry(name);
            e.setTime(0);
            zip.putNextEntry(e);
            Files.copy(f, zip);
            zip.closeEntry();
          } // links and devices are not copied
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("packing the build context: " + e.getMessage(), e);
    }
    byte[] z = bytes.toByteArray();
    if (z.length > CodeBundle.MAX_BYTES) {
      throw new IllegalArgumentException(
          "the directories added to the image come to over "
              + (CodeBundle.MAX_BYTES >> 20)
              + " MiB zipped: add large data another way (a volume, a bucket)");
    }
    return z;
  }

  /** The JVM that runs Java functions ("" for {@code java} on the image's PATH). */
  public String jvm() {
    return jvm;
  }

  @Override
  public String toString() {
    String what = spec != null ? spec.toString() : "image of " + (steps.size() + 1) + " steps";
    return what + (jvm.isEmpty() ? "" : " (JVM " + jvm + ")");
  }
}
