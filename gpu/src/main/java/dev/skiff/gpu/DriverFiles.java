package dev.skiff.gpu;

import dev.skiff.runtime.SandboxOptions;
import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * What of NVIDIA's driver a GPU sandbox needs from the host, as the NVIDIA container toolkit would
 * mount it: the device nodes (each GPU's {@code /dev/nvidiaN}, {@code /dev/nvidiactl}, {@code
 * /dev/nvidia-uvm}), and the driver's user-space libraries and tools of the running driver's
 * version ({@code libcuda.so.VERSION}, {@code libnvidia-ml.so.VERSION}, ..., {@code nvidia-smi}).
 *
 * <p>The libraries and tools are gathered once per driver version into a directory of their own
 * ({@code lib64/} with the sonames programs load, {@code bin/}), which a sandbox gets read-only at
 * {@link #MOUNT} with {@code LD_LIBRARY_PATH} reaching its {@code lib64} (the runtime adds it), as
 * GKE gives its GPU containers the driver: one bind, nothing else of the host's library
 * directories.
 *
 * @param devRoot the host's {@code /dev}
 * @param libraryDirs where the driver's libraries are looked for, in order
 * @param binDirs where its tools are looked for
 */
public record DriverFiles(Path devRoot, List<Path> libraryDirs, List<Path> binDirs) {
  /** Where a sandbox finds the driver's files. */
  public static final String MOUNT = SandboxOptions.NVIDIA_DRIVER_DIR;

  /** The driver's libraries a CUDA program (and nvidia-smi) may load; the first two it must. */
  static final List<String> LIBRARIES =
      List.of(
          "libcuda",
          "libnvidia-ml",
          "libcudadebugger",
          "libnvidia-ptxjitcompiler",
          "libnvidia-nvvm",
          "libnvidia-gpucomp",
          "libnvidia-cfg",
          "libnvidia-opencl",
          "libnvidia-allocator",
          "libnvidia-pkcs11",
          "libnvidia-pkcs11-openssl3");

  /** Its tools a sandbox gets. */
  static final List<String> TOOLS = List.of("nvidia-smi", "nvidia-debugdump");

  /**
   * This host's places: under {@code /}, or under {@code $SKIFF_GPU_ROOT} where the driver lives in
   * a directory of its own (as NVIDIA's GPU operator installs it, under {@code
   * /run/nvidia/driver}).
   */
  public static DriverFiles host() {
    String root = System.getenv("SKIFF_GPU_ROOT");
    return under(Path.of(root == null || root.isBlank() ? "/" : root));
  }

  /** The usual places under {@code root}. */
  public static DriverFiles under(Path root) {
    return new DriverFiles(
        root.resolve("dev"),
        Nvml.LIBRARY_DIRS.stream().map(d -> root.resolve(d.substring(1))).toList(),
        List.of(
            root.resolve("usr/bin"),
            root.resolve("usr/local/nvidia/bin"),
            root.resolve("usr/sbin")));
  }

  /**
   * The device nodes a sandbox with {@code gpus} gets: theirs and the driver's two it always needs.
   * ({@code nvidia-uvm-tools} and {@code nvidia-modeset} are left out: nvproxy has no use for them
   * and refuses a spec that lists them.)
   *
   * @throws IOException if one is missing or not a character device: the message names it
   */
  public List<SandboxOptions.Device> devices(List<Gpu> gpus) throws IOException {
    List<SandboxOptions.Device> out = new ArrayList<>();
    out.add(device("nvidiactl"));
    out.add(device("nvidia-uvm"));
    for (Gpu g : gpus) {
      out.add(device("nvidia" + g.minor()));
    }
    return out;
  }

  private SandboxOptions.Device device(String name) throws IOException {
    Path p = devRoot.resolve(name);
    if (!Files.exists(p)) {
      throw new IOException(
          p
              + " is missing: the NVIDIA driver is not loaded"
              + (name.equals("nvidia-uvm")
                  ? " (or its nvidia-uvm module: modprobe nvidia-uvm)"
                  : ""));
    }
    if (!"c".equals(type(p))) {
      throw new IOException(p + " is not a character device");
    }
    long rdev = ((Number) Files.getAttribute(p, "unix:rdev")).longValue();
    long major = ((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL);
    long minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xffL);
    return new SandboxOptions.Device("/dev/" + name, major, minor);
  }

  private static String type(Path p) throws IOException {
    int mode = (Integer) Files.getAttribute(p, "unix:mode");
    return (mode & 0170000) == 0020000 ? "c" : "other";
  }

  /**
   * The directory of driver {@code version}'s files under {@code stagingRoot}, gathered now if it
   * is not there yet (hard links where the file system allows, else copies; made whole under a
   * temporary name, then renamed, so a sandbox never sees half of it).
   *
   * @throws IOException if the driver's {@code libcuda} or {@code libnvidia-ml} of that version is
   *     not found: the message says where it looked
   */
  public Path stage(String version, Path stagingRoot) throws IOException {
    if (!version.matches("[0-9][0-9.]*")) {
      throw new IllegalArgumentException("not a driver version: '" + version + "'");
    }
    Path dir = stagingRoot.resolve("driver-" + version);
    if (Files.isDirectory(dir)) {
      return dir;
    }
    Files.createDirectories(stagingRoot);
    Path tmp = Files.createTempDirectory(stagingRoot, ".driver-");
    try {
      Path lib = Files.createDirectory(tmp.resolve("lib64"));
      for (String name : LIBRARIES) {
        Optional<Path> found = library(name, version);
        if (found.isEmpty()) {
          if (name.equals("libcuda") || name.equals("libnvidia-ml")) {
            throw new IOException(
                "the driver's "
                    + name
                    + ".so."
                    + version
                    + " is not in "
                    + libraryDirs
                    + ": is driver "
                    + version
                    + "'s user-space part installed?");
          }
          continue;
        }
        String file = name + ".so." + version;
        place(found.get(), lib.resolve(file));
        Files.createSymbolicLink(lib.resolve(name + ".so.1"), Path.of(file));
        Files.createSymbolicLink(lib.resolve(name + ".so"), Path.of(name + ".so.1"));
      }
      Path bin = Files.createDirectory(tmp.resolve("bin"));
      for (String tool : TOOLS) {
        for (Path d : binDirs) {
          Path t = d.resolve(tool);
          if (Files.isRegularFile(t) && Files.isExecutable(t)) {
            place(t, bin.resolve(tool));
            break;
          }
        }
      }
      try {
        Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
      } catch (FileSystemException raced) {
        if (!Files.isDirectory(dir)) {
          throw raced;
        }
      }
    } finally {
      if (Files.exists(tmp)) {
        try (Stream<Path> all = Files.walk(tmp)) {
          for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
            Files.delete(p);
          }
        }
      }
    }
    return dir;
  }

  private Optional<Path> library(String name, String version) {
    for (Path d : libraryDirs) {
      Path p = d.resolve(name + ".so." + version);
      if (Files.isRegularFile(p)) {
        return Optional.of(p);
      }
    }
    return Optional.empty();
  }

  private static void place(Path source, Path target) throws IOException {
    Path real = source.toRealPath();
    try {
      Files.createLink(target, real);
    } catch (IOException | UnsupportedOperationException e) {
      Files.copy(real, target, StandardCopyOption.COPY_ATTRIBUTES);
    }
  }
}
