package dev.skiff.runtime.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A root filesystem made of this host's own binaries and the shared libraries they load (as ldd
 * lists them), plus /etc/passwd and /etc/group with a root and an {@code app} (1000) user: a real
 * image for sandbox tests and benchmarks with no registry to pull from.
 */
public final class HostRootfs {
  private static final Pattern LIB = Pattern.compile("(/\\S+)");
  private final List<String> binaries = new ArrayList<>();
  private final List<String> trees = new ArrayList<>();
  private String jvmAt;

  /** The shell tools the runtime tests use. */
  public static HostRootfs tools() {
    return new HostRootfs()
        .binaries(
            "/bin/sh",
            "/bin/dash",
            "/bin/cat",
            "/bin/echo",
            "/bin/sleep",
            "/bin/true",
            "/bin/false",
            "/bin/ls",
            "/usr/bin/id",
            "/usr/bin/env",
            "/usr/bin/head",
            "/bin/pwd",
            "/usr/bin/seq",
            "/bin/rm",
            "/usr/bin/touch",
            "/bin/bash",
            "/bin/mv",
            "/bin/chmod");
  }

  /**
   * The shell tools and this host's Python 3.11 with its standard library: an image for handlers.
   */
  public static HostRootfs python() {
    return tools().binaries("/usr/bin/python3").tree("/usr/lib/python3.11");
  }

  public HostRootfs binaries(String... paths) {
    binaries.addAll(List.of(paths));
    return this;
  }

  /** Copies a whole host directory (python's standard library, say). */
  public HostRootfs tree(String dir) {
    trees.add(dir);
    return this;
  }

  /**
   * A JVM at {@code dir} (say {@code /opt/java}): a run-time image linked by the JDK running this
   * test (java.base, logging, SQL, XML; a CDS archive for quick starts), with the host libraries it
   * loads.
   */
  public HostRootfs jvm(String dir) {
    jvmAt = dir;
    return this;
  }

  public Path build(Path root) throws IOException, InterruptedException {
    if (jvmAt != null) {
      Path into = root.resolve(jvmAt.substring(1));
      Files.createDirectories(into.getParent());
      run(
          Path.of(System.getProperty("java.home"), "bin", "jlink").toString(),
          "--add-modules",
          "java.base,java.logging,java.sql,java.xml,jdk.unsupported",
          "--strip-debug",
          "--no-header-files",
          "--no-man-pages",
          "--generate-cds-archive",
          "--output",
          into.toString());
      for (String b : List.of("bin/java", "lib/server/libjvm.so")) {
        copyLibraries(into.resolve(b), root);
      }
    }
    for (String d : List.of("etc", "tmp", "proc", "dev", "sys", "root", "home/app")) {
      Files.createDirectories(root.resolve(d));
    }
    for (String b : binaries) {
      copy(Path.of(b), root);
      copyLibraries(Path.of(b), root);
    }
    for (String t : trees) {
      Path dst = root.resolve(t.substring(1));
      Files.createDirectories(dst.getParent());
      run("cp", "-a", t, dst.getParent().toString());
    }
    Files.writeString(
        root.resolve("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
    Files.writeString(root.resolve("etc/group"), "root:x:0:\napp:x:1000:\n");
    return root;
  }

  /** Copies the host libraries {@code binary} loads (as ldd lists them) into {@code root}. */
  private static void copyLibraries(Path binary, Path root)
      throws IOException, InterruptedException {
    Process ldd =
        new ProcessBuilder("ldd", binary.toRealPath().toString()).redirectErrorStream(true).start();
    String out = new String(ldd.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    ldd.waitFor();
    Matcher m = LIB.matcher(out);
    while (m.find()) {
      Path lib = Path.of(m.group(1));
      if (Files.exists(lib) && !lib.startsWith(root)) {
        copy(lib, root);
      }
    }
  }

  private static void copy(Path file, Path root) throws IOException {
    Path dst = root.resolve(file.toString().substring(1));
    if (Files.exists(dst, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    Files.createDirectories(dst.getParent());
    Files.copy(file, dst, StandardCopyOption.COPY_ATTRIBUTES);
  }

  private static void run(String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).inheritIO().start();
    if (p.waitFor() != 0) {
      throw new IOException(String.join(" ", cmd) + " failed");
    }
  }
}
