package dev.skiff.sdk;

import com.google.protobuf.ByteString;
import dev.skiff.scheduler.CodeBundle;
import dev.skiff.scheduler.proto.CodeDigests;
import dev.skiff.scheduler.proto.CodeUpload;
import dev.skiff.scheduler.proto.ControlGrpc;
import java.io.File;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The caller's own classes and jars, as they travel to the containers of its Java functions: each
 * class path entry a jar (a directory of classes is zipped the same way every time), named by its
 * content's digest, so an unchanged entry is never uploaded twice and an edited class uploads only
 * its directory's jar. The entries the container already has from the runner (the SDK, Jackson) and
 * those only the caller needs (gRPC, protobuf) stay behind.
 */
final class ClassPath {
  /** Classes whose jars stay behind: the runner brings its own, or containers never need them. */
  private static final List<String> LEFT_BEHIND =
      List.of(
          "dev.skiff.sdk.App",
          "com.fasterxml.jackson.databind.ObjectMapper",
          "com.fasterxml.jackson.core.JsonFactory",
          "com.fasterxml.jackson.annotation.JsonProperty",
          "io.grpc.Channel",
          "io.grpc.internal.AbstractStream",
          "io.grpc.stub.StreamObserver",
          "io.grpc.protobuf.ProtoUtils",
          "io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder",
          "com.google.protobuf.Message");

  /** One entry: where it is here, and its bytes as a jar. */
  record Entry(Path path, byte[] jar, String digest) {}

  private final List<Entry> entries;

  private ClassPath(List<Entry> entries) {
    this.entries = entries;
  }

  /**
   * This JVM's class path, less what stays behind; a jar that only names others in its manifest (as
   * test runners start JVMs) stands for those.
   */
  static ClassPath ofThisJvm() {
    List<Path> paths = new ArrayList<>();
    for (String e : System.getProperty("java.class.path", "").split(File.pathSeparator)) {
      if (!e.isBlank()) {
        Path p = Path.of(e);
        paths.addAll(manifestOnly(p).orElse(List.of(p)));
      }
    }
    return of(paths);
  }

  /** The entries {@code paths} name, less what stays behind. */
  static ClassPath of(List<Path> paths) {
    Set<Path> behind = new HashSet<>();
    for (String c : LEFT_BEHIND) {
      try {
        var src = Class.forName(c, false, ClassPath.class.getClassLoader()).getProtectionDomain();
        if (src.getCodeSource() != null && src.getCodeSource().getLocation() != null) {
          behind.add(Path.of(src.getCodeSource().getLocation().toURI()).toAbsolutePath());
        }
      } catch (ClassNotFoundException | URISyntaxException | IllegalArgumentException e) {
        // not on this class path: nothing to leave behind
      }
    }
    Map<Path, Entry> found = new LinkedHashMap<>();
    for (Path given : paths) {
      Path p = given.toAbsolutePath().normalize();
      if (behind.contains(p) || found.containsKey(p) || !Files.exists(p)) {
        continue;
      }
      try {
        byte[] jar;
        if (Files.isDirectory(p)) {
          if (isEmpty(p)) {
            continue;
          }
          jar = CodeBundle.pack(p);
        } else if (p.toString().endsWith(".jar") || p.toString().endsWith(".zip")) {
          jar = Files.readAllBytes(p);
        } else {
          continue;
        }
        found.put(p, new Entry(p, jar, CodeBundle.digest(jar)));
      } catch (IOException io) {
        throw new SkiffException("cannot ship class path entry " + p + ": " + io.getMessage(), io);
      }
    }
    return new ClassPath(List.copyOf(found.values()));
  }

  /** The entries a jar's manifest names, if it holds nothing but its manifest. */
  private static java.util.Optional<List<Path>> manifestOnly(Path p) {
    if (!p.toString().endsWith(".jar") || !Files.isRegularFile(p)) {
      return java.util.Optional.empty();
    }
    try (java.util.jar.JarFile jar = new java.util.jar.JarFile(p.toFile())) {
      if (jar.stream().anyMatch(e -> !e.getName().startsWith("META-INF/"))
          || jar.getManifest() == null) {
        return java.util.Optional.empty();
      }
      String cp = jar.getManifest().getMainAttributes().getValue("Class-Path");
      if (cp == null || cp.isBlank()) {
        return java.util.Optional.empty();
      }
      List<Path> named = new ArrayList<>();
      for (String u : cp.trim().split("\\s+")) {
        named.add(Path.of(p.toUri().resolve(u)));
      }
      return java.util.Optional.of(named);
    } catch (IOException | IllegalArgumentException e) {
      return java.util.Optional.empty();
    }
  }

  private static boolean isEmpty(Path dir) throws IOException {
    try (var s = Files.walk(dir)) {
      return s.noneMatch(Files::isRegularFile);
    }
  }

  List<String> digests() {
    return entries.stream().map(Entry::digest).toList();
  }

  long bytes() {
    return entries.stream().mapToLong(e -> e.jar().length).sum();
  }

  /** Uploads the entries the scheduler lacks; returns how many bytes went up. */
  long upload(ControlGrpc.ControlBlockingStub control) {
    List<String> missing =
        control
            .missingCode(CodeDigests.newBuilder().addAllDigests(digests()).build())
            .getDigestsList();
    long sent = 0;
    Set<String> want = new HashSet<>(missing);
    for (Entry e : entries) {
      if (want.remove(e.digest())) { // each once, though two entries may hold the same bytes
        control.putCode(CodeUpload.newBuilder().setJar(ByteString.copyFrom(e.jar())).build());
        sent += e.jar().length;
      }
    }
    return sent;
  }
}
