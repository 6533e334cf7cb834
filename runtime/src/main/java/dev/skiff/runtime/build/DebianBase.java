package dev.skiff.runtime.build;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.util.Trees;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Debian bases made with {@code debootstrap --variant=minbase} from the Debian mirror this host's
 * apt uses, once, then kept in the store ({@code skiff-base:SUITE-...}): what {@code FROM
 * debootstrap://SUITE[?include=PKG,PKG]} names in a build. No registry is needed, only the mirror.
 */
final class DebianBase {
  /** Debian's suites, by name and by role; debootstrap is not run for any other name. */
  private static final java.util.Set<String> SUITES =
      java.util.Set.of(
          "bullseye",
          "bookworm",
          "trixie",
          "forky",
          "sid",
          "oldstable",
          "stable",
          "testing",
          "unstable");

  /** How long a debootstrap may take before it is stopped. */
  static final java.time.Duration TIMEOUT = java.time.Duration.ofMinutes(30);

  private static final Pattern PACKAGE = Pattern.compile("[a-z0-9][a-z0-9+.-]*");
  static final String DEFAULT_MIRROR = "http://deb.debian.org/debian";

  private DebianBase() {}

  /** Whether {@code from} names a debootstrap base. */
  static boolean is(String from) {
    return from.startsWith("debootstrap://");
  }

  /** A parsed {@code debootstrap://SUITE[?include=PKG,PKG]}. */
  record Spec(String suite, List<String> include) {
    static Spec parse(String from) throws ImageBuilder.BuildException {
      String rest = from.substring("debootstrap://".length());
      int q = rest.indexOf('?');
      String suite = q < 0 ? rest : rest.substring(0, q);
      List<String> include = new ArrayList<>();
      if (q >= 0) {
        String query = rest.substring(q + 1);
        if (!query.startsWith("include=")) {
          throw new ImageBuilder.BuildException(
              "FROM " + from + ": the only option is ?include=PKG,PKG");
        }
        for (String p : query.substring("include=".length()).split(",")) {
          if (!PACKAGE.matcher(p).matches()) {
            throw new ImageBuilder.BuildException(
                "FROM " + from + ": '" + p + "' is not a Debian package name");
          }
          include.add(p);
        }
      }
      if (!SUITES.contains(suite)) {
        throw new ImageBuilder.BuildException(
            "FROM "
                + from
                + ": want debootstrap://SUITE, one of "
                + new java.util.TreeSet<>(SUITES));
      }
      return new Spec(suite, include.stream().sorted().distinct().toList());
    }

    /** The tag the base is kept under. */
    ImageRef ref() {
      String tag =
          include.isEmpty()
              ? suite
              : suite
                  + "-"
                  + ImageBuilder.sha256(String.join(",", include).getBytes(StandardCharsets.UTF_8))
                      .substring(0, 12);
      return ImageRef.parse("skiff-base:" + tag);
    }
  }

  /** The base {@code from} names, made now if the store lacks it. */
  static ImageRef ensure(ImageStore store, String from, Consumer<String> log) throws IOException {
    Spec spec = Spec.parse(from);
    ImageRef ref = spec.ref();
    if (store.resolve(ref).isPresent()) {
      return ref;
    }
    String mirror = mirror(Path.of("/etc/apt"));
    log.accept(
        "debootstrap --variant=minbase "
            + (spec.include().isEmpty()
                ? ""
                : "--include=" + String.join(",", spec.include()) + " ")
            + spec.suite()
            + " from "
            + mirror
            + " (once; kept as "
            + ref
            + ")");
    Path dir = Files.createTempDirectory(store.scratch(), "debootstrap-");
    try {
      String bin =
          Files.isExecutable(Path.of("/usr/sbin/debootstrap"))
              ? "/usr/sbin/debootstrap"
              : "debootstrap";
      List<String> cmd = new ArrayList<>(List.of(bin, "--variant=minbase"));
      if (!spec.include().isEmpty()) {
        cmd.add("--include=" + String.join(",", spec.include()));
      }
      cmd.addAll(List.of(spec.suite(), dir.toString(), mirror));
      Process p;
      try {
        p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      } catch (IOException e) {
        throw new ImageBuilder.BuildException(
            "FROM "
                + from
                + ": cannot run debootstrap ("
                + e.getMessage()
                + "): apt-get install debootstrap");
      }
      Process running = p;
      Thread watchdog =
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      if (!running.waitFor(
                          TIMEOUT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS)) {
                        running.destroyForcibly(); // its output ends, and the loop below with it
                      }
                    } catch (InterruptedException e) {
                      running.destroyForcibly();
                    }
                  });
      List<String> tail = new ArrayList<>();
      try (BufferedReader r =
          new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line; (line = r.readLine()) != null; ) {
          if (line.startsWith("I: Retrieving") || line.startsWith("I: Validating")) {
            continue; // one per package: the log keeps the steps
          }
          log.accept("  " + line);
          tail.add(line);
          if (tail.size() > 5) {
            tail.remove(0);
          }
        }
      }
      int code;
      try {
        code = p.waitFor();
      } catch (InterruptedException e) {
        p.destroyForcibly();
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("debootstrap interrupted");
      } finally {
        watchdog.interrupt();
      }
      if (code != 0) {
        throw new ImageBuilder.BuildException(
            "FROM "
                + from
                + ": debootstrap failed (exit "
                + code
                + "): "
                + String.join(" / ", tail));
      }
      // what only the making needed: downloaded packages and the mirror's lists
      for (String d : List.of("var/cache/apt/archives", "var/lib/apt/lists")) {
        Path p2 = dir.resolve(d);
        if (Files.isDirectory(p2)) {
          try (Stream<Path> files = Files.list(p2)) {
            for (Path f : files.toList()) {
              if (Files.isRegularFile(f, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                Files.delete(f);
              }
            }
          }
        }
      }
      store.importImage(dir.toString(), ref, ImportProgress.NONE);
      return ref;
    } finally {
      Trees.delete(dir);
    }
  }

  /**
   * The Debian mirror apt uses here: the first {@code deb} source of {@code /etc/apt} (deb822
   * {@code .sources} files, then {@code sources.list}) whose suites are Debian's own, else {@link
   * #DEFAULT_MIRROR}.
   */
  static String mirror(Path etcApt) throws IOException {
    List<Path> files = new ArrayList<>();
    Path d = etcApt.resolve("sources.list.d");
    if (Files.isDirectory(d)) {
      try (Stream<Path> s = Files.list(d)) {
        s.filter(f -> f.toString().endsWith(".sources") || f.toString().endsWith(".list"))
            .sorted()
            .forEach(files::add);
      }
    }
    files.add(etcApt.resolve("sources.list"));
    for (Path f : files) {
      if (!Files.isRegularFile(f)) {
        continue;
      }
      for (String line : Files.readAllLines(f)) {
        String l = line.strip();
        String uri = null;
        if (l.startsWith("URIs:")) {
          uri = l.substring(5).strip().split("\\s+")[0];
        } else if (l.startsWith("deb ")) {
          for (String w : l.substring(4).strip().split("\\s+")) {
            if (w.startsWith("http://") || w.startsWith("https://")) {
              uri = w;
              break;
            }
          }
        }
        if (uri != null && URI.create(uri).getPath().replaceAll("/+$", "").endsWith("/debian")) {
          return uri;
        }
      }
    }
    return DEFAULT_MIRROR;
  }
}
