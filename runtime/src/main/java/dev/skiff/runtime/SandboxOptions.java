package dev.skiff.runtime;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * How a sandbox runs: what {@code skiff run}'s options set. Build with {@link #builder()}.
 *
 * @param env NAME=VALUE pairs added to (or replacing) the image's environment
 * @param workdir working directory, or null for the image's
 * @param defaultWorkdir working directory where {@code workdir} is null and the image names none (a
 *     function's code directory, say), or null for {@code /}
 * @param user {@code UID[:GID]} or a user name from the image's /etc/passwd, or null for the
 *     image's
 * @param volumes host directories bound into the sandbox
 * @param timeout kill the sandbox after this long, or null for no limit
 * @param memoryBytes memory limit in bytes, 0 for none
 * @param cpus CPU limit in cores (fractions allowed), 0 for none
 * @param network give the sandbox the host's network (default: none at all)
 * @param scratch where writes to the root filesystem go: null keeps them in the sandbox's memory; a
 *     directory holds them in a file there. Either way they vanish with the sandbox.
 * @param entrypoint replaces the image's entrypoint for a sandbox's first process (and, as with
 *     {@code docker run --entrypoint}, drops the image's command); null keeps the image's
 * @param devices NVIDIA device nodes the sandbox sees, served by gVisor's nvproxy (which proxies
 *     their ioctls to the host's driver): a GPU's own node and the driver's control nodes. Any
 *     turns nvproxy on; none (the default) leaves the sandbox without GPU functionality at all. The
 *     driver's user-space files are bound in as read-only volumes (module {@code gpu} builds both).
 */
public record SandboxOptions(
    List<String> env,
    String workdir,
    String defaultWorkdir,
    String user,
    List<Volume> volumes,
    Duration timeout,
    long memoryBytes,
    double cpus,
    boolean network,
    Path scratch,
    List<String> entrypoint,
    List<Device> devices,
    boolean runc,
    Path captureWrites) {

  /**
   * Where a sandbox with GPUs finds the NVIDIA driver's user-space files ({@code lib64/}, {@code
   * bin/}), bound read-only; {@code LD_LIBRARY_PATH} gets its {@code lib64} at the end.
   */
  public static final String NVIDIA_DRIVER_DIR = "/usr/local/nvidia";

  /**
   * A character device node at {@code path} in the sandbox, the host's {@code major:minor}, served
   * by nvproxy.
   */
  public record Device(String path, long major, long minor) {
    public Device {
      if (!path.startsWith("/dev/nvidia") || path.contains("/..")) {
        throw new IllegalArgumentException(
            "only NVIDIA device nodes (/dev/nvidia*) are passed to a sandbox, not " + path);
      }
    }
  }

  /**
   * A host directory (or file) bound at {@code target} inside the sandbox. A read-only one is
   * read-only on the host too: the sandbox gets a bind of {@code source} that the host kernel keeps
   * read-only (made under the sandbox's state directory, gone with it), so no write from the
   * sandbox reaches the source, whatever runsc does.
   */
  public record Volume(Path source, String target, boolean readOnly) {
    public Volume {
      if (!source.isAbsolute()) {
        throw new IllegalArgumentException("volume source must be an absolute path: " + source);
      }
      if (!target.startsWith("/") || target.contains("/../") || target.endsWith("/..")) {
        throw new IllegalArgumentException(
            "volume target must be an absolute path inside the sandbox: " + target);
      }
    }

    /** Parses {@code /host/path:/sandbox/path[:ro|rw]}. */
    public static Volume parse(String spec) {
      String[] p = spec.split(":");
      if (p.length < 2
          || p.length > 3
          || (p.length == 3 && !p[2].equals("ro") && !p[2].equals("rw"))) {
        throw new IllegalArgumentException(
            "bad volume '" + spec + "': want /host/path:/sandbox/path[:ro|rw]");
      }
      return new Volume(
          Path.of(p[0]).toAbsolutePath().normalize(), p[1], p.length == 3 && p[2].equals("ro"));
    }
  }

  public SandboxOptions {
    env = List.copyOf(env);
    volumes = List.copyOf(volumes);
    devices = devices == null ? List.of() : List.copyOf(devices);
    entrypoint = entrypoint == null ? null : List.copyOf(entrypoint);
    if (memoryBytes < 0 || cpus < 0) {
      throw new IllegalArgumentException("memory and CPU limits must not be negative");
    }
  }

  public static SandboxOptions defaults() {
    return builder().build();
  }

  public static Builder builder() {
    return new Builder();
  }

  public Builder toBuilder() {
    Builder b = new Builder();
    b.env.addAll(env);
    b.workdir = workdir;
    b.defaultWorkdir = defaultWorkdir;
    b.user = user;
    b.volumes.addAll(volumes);
    b.timeout = timeout;
    b.memoryBytes = memoryBytes;
    b.cpus = cpus;
    b.network = network;
    b.scratch = scratch;
    b.entrypoint = entrypoint;
    b.devices.addAll(devices);
    b.runc = runc;
    b.captureWrites = captureWrites;
    return b;
  }

  public static final class Builder {
    private final List<String> env = new ArrayList<>();
    private String workdir;
    private String defaultWorkdir;
    private String user;
    private final List<Volume> volumes = new ArrayList<>();
    private Duration timeout;
    private long memoryBytes;
    private double cpus;
    private boolean network;
    private Path scratch;
    private List<String> entrypoint;
    private final List<Device> devices = new ArrayList<>();
    private boolean runc;
    private Path captureWrites;

    public Builder env(String nameEqualsValue) {
      env.add(nameEqualsValue);
      return this;
    }

    public Builder workdir(String dir) {
      this.workdir = dir;
      return this;
    }

    /** The working directory where none is set here and the image names none. */
    public Builder defaultWorkdir(String dir) {
      this.defaultWorkdir = dir;
      return this;
    }

    public Builder user(String user) {
      this.user = user;
      return this;
    }

    public Builder volume(Volume v) {
      volumes.add(v);
      return this;
    }

    public Builder timeout(Duration d) {
      this.timeout = d;
      return this;
    }

    public Builder memory(long bytes) {
      this.memoryBytes = bytes;
      return this;
    }

    public Builder cpus(double cores) {
      this.cpus = cores;
      return this;
    }

    public Builder network(boolean on) {
      this.network = on;
      return this;
    }

    public Builder scratch(Path dir) {
      this.scratch = dir;
      return this;
    }

    public Builder entrypoint(List<String> argv) {
      this.entrypoint = argv;
      return this;
    }

    public Builder device(Device d) {
      devices.add(d);
      return this;
    }

    public Builder captureWrites(Path dir) {
      this.captureWrites = dir;
      return this;
    }

    public Builder runc(boolean on) {
      this.runc = on;
      return this;
    }

    public SandboxOptions build() {
      return new SandboxOptions(
          env,
          workdir,
          defaultWorkdir,
          user,
          volumes,
          timeout,
          memoryBytes,
          cpus,
          network,
          scratch,
          entrypoint,
          devices,
          runc,
          captureWrites);
    }
  }
}
