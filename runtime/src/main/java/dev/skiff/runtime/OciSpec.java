package dev.skiff.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes the OCI runtime spec ({@code config.json}) of a sandbox: the process from the image's
 * config and the options, the casfs mount as root, the usual /proc, /dev and /sys, volumes, and
 * resource limits. Writes to the root go to gVisor's overlay (see {@link Runsc}), never to the
 * image.
 */
final class OciSpec {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Docker's default capability set: what a containerised program usually expects of root. */
  private static final List<String> CAPS =
      List.of(
          "CAP_CHOWN",
          "CAP_DAC_OVERRIDE",
          "CAP_FSETID",
          "CAP_FOWNER",
          "CAP_MKNOD",
          "CAP_NET_RAW",
          "CAP_SETGID",
          "CAP_SETUID",
          "CAP_SETFCAP",
          "CAP_SETPCAP",
          "CAP_NET_BIND_SERVICE",
          "CAP_SYS_CHROOT",
          "CAP_KILL",
          "CAP_AUDIT_WRITE");

  /** A process: argv, environment, working directory, and the user it runs as. */
  record Process(
      List<String> args, List<String> env, String cwd, long uid, long gid, List<Long> groups) {}

  /**
   * A volume as runsc gets it: {@code hostSource} is the volume's source, or for a read-only volume
   * a read-only bind of it ({@link ReadOnlyBinds}).
   */
  record Bind(SandboxOptions.Volume volume, Path hostSource) {}

  /**
   * The annotation that keeps, for a read-only bind at a destination, the source it was made of: a
   * restore binds that source again ({@link Snapshot#specFor}).
   */
  static final String READ_ONLY_SOURCE = "dev.skiff.read-only-source:";

  private OciSpec() {}

  /**
   * A sandbox's first process as an image and options describe it: the entrypoint (the options' or
   * the image's) and {@code args}, with the user resolved in {@code rootfs}.
   */
  static Process process(ImageConfig image, SandboxOptions o, List<String> args, Path rootfs)
      throws IOException {
    List<String> argv = image.argv(args);
    if (o.entrypoint() != null) {
      argv = new ArrayList<>(o.entrypoint());
      argv.addAll(args);
    }
    return process(argv, image, o, rootfs);
  }

  /**
   * A process started in a running sandbox: {@code argv} as given (no entrypoint, as {@code docker
   * exec}), with the image's environment, working directory and user unless the options say.
   */
  static Process execProcess(ImageConfig image, SandboxOptions o, List<String> argv, Path rootfs)
      throws IOException {
    return process(argv, image, o, rootfs);
  }

  private static Process process(
      List<String> argv, ImageConfig image, SandboxOptions o, Path rootfs) throws IOException {
    if (argv.isEmpty()) {
      throw new IllegalArgumentException(
          "no command given and the image has no entrypoint or command");
    }
    String user = o.user() != null ? o.user() : image.user();
    long[] ids = resolveUser(user, rootfs);
    String cwd = o.workdir() != null ? o.workdir() : image.workdirOr(o.defaultWorkdir());
    if (!cwd.startsWith("/")) {
      throw new IllegalArgumentException("working directory must be absolute: " + cwd);
    }
    List<String> env = image.env(o.env());
    if (!o.devices().isEmpty()) {
      env = withDriverLibraries(env);
    }
    return new Process(argv, env, cwd, ids[0], ids[1], List.of());
  }

  /**
   * {@code env} with the NVIDIA driver's libraries ({@link SandboxOptions#NVIDIA_DRIVER_DIR}) at
   * the end of {@code LD_LIBRARY_PATH}: the image's own directories still come first, and CUDA
   * images, which list the directory already, are left as they are.
   */
  static List<String> withDriverLibraries(List<String> env) {
    String dir = SandboxOptions.NVIDIA_DRIVER_DIR + "/lib64";
    List<String> out = new ArrayList<>();
    boolean found = false;
    for (String e : env) {
      if (e.startsWith("LD_LIBRARY_PATH=")) {
        found = true;
        String v = e.substring("LD_LIBRARY_PATH=".length());
        if (!List.of(v.split(":")).contains(dir)) {
          e = "LD_LIBRARY_PATH=" + (v.isEmpty() ? dir : v + ":" + dir);
        }
      }
      out.add(e);
    }
    if (!found) {
      out.add("LD_LIBRARY_PATH=" + dir);
    }
    return out;
  }

  /**
   * {@code UID[:GID]} or {@code NAME[:GROUP]}; names are looked up in the image's /etc files, read
   * inside the image ({@link ImageRootReader}: an image's symlink never leads to a host file).
   */
  static long[] resolveUser(String user, Path rootfs) throws IOException {
    if (user == null || user.isEmpty()) {
      return new long[] {0, 0};
    }
    String[] parts = user.split(":", 2);
    long uid;
    long gid = -1;
    if (parts[0].matches("\\d+")) {
      uid = Long.parseLong(parts[0]);
    } else {
      String[] pw = lookup(rootfs, "/etc/passwd", parts[0], "user", user);
      uid = Long.parseLong(pw[2]);
      gid = Long.parseLong(pw[3]);
    }
    if (parts.length == 2) {
      gid =
          parts[1].matches("\\d+")
              ? Long.parseLong(parts[1])
              : Long.parseLong(lookup(rootfs, "/etc/group", parts[1], "group", user)[2]);
    } else if (gid < 0) {
      gid = uid == 0 ? 0 : gidOf(rootfs, uid);
    }
    return new long[] {uid, gid};
  }

  private static long gidOf(Path rootfs, long uid) throws IOException {
    for (String line : lines(rootfs, "/etc/passwd")) {
      String[] f = line.split(":");
      if (f.length >= 4 && f[2].equals(Long.toString(uid))) {
        return Long.parseLong(f[3]);
      }
    }
    return uid;
  }

  private static String[] lookup(Path rootfs, String file, String name, String what, String spec)
      throws IOException {
    for (String line : lines(rootfs, file)) {
      String[] f = line.split(":");
      if (f.length >= 3 && f[0].equals(name)) {
        return f;
      }
    }
    throw new IllegalArgumentException(
        "no " + what + " '" + name + "' in the image's " + file + " (user " + spec + ")");
  }

  /** The lines of a file inside the image; none if it has no such file. */
  private static List<String> lines(Path rootfs, String file) throws IOException {
    return ImageRootReader.read(rootfs, file)
        .map(b -> new String(b, StandardCharsets.ISO_8859_1).lines().toList())
        .orElse(List.of());
  }

  /**
   * The spec as JSON, with {@code binds} as its volumes (the options' own volumes are not read).
   * {@code cgroupsPath} null leaves resources out (limits not applied).
   */
  static byte[] write(
      Process p,
      Path rootfs,
      SandboxOptions o,
      List<Bind> binds,
      String hostname,
      String cgroupsPath)
      throws IOException {
    ObjectNode spec = JSON.createObjectNode();
    spec.put("ociVersion", "1.0.0");
    spec.set("process", processJson(p, o.runc()));
    ObjectNode root = spec.putObject("root");
    root.put("path", rootfs.toString());
    root.put("readonly", false); // the overlay takes the writes; the casfs mount below is read-only
    spec.put("hostname", hostname);
    ArrayNode mounts = spec.putArray("mounts");
    mount(mounts, "/proc", "proc", "proc", List.of());
    mount(
        mounts,
        "/dev",
        "tmpfs",
        "tmpfs",
        List.of("nosuid", "strictatime", "mode=755", "size=65536k"));
    mount(
        mounts,
        "/dev/pts",
        "devpts",
        "devpts",
        List.of("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"));
    mount(
        mounts,
        "/dev/shm",
        "tmpfs",
        "shm",
        List.of("nosuid", "noexec", "nodev", "mode=1777", "size=65536k"));
    mount(mounts, "/sys", "sysfs", "sysfs", List.of("nosuid", "noexec", "nodev", "ro"));
    ObjectNode annotations = JSON.createObjectNode();
    for (Bind b : binds) {
      SandboxOptions.Volume v = b.volume();
      mount(
          mounts,
          v.target(),
          "bind",
          b.hostSource().toString(),
          List.of("rbind", v.readOnly() ? "ro" : "rw"));
      if (v.readOnly()) {
        annotations.put(READ_ONLY_SOURCE + v.target(), v.source().toString());
      }
    }
    if (!annotations.isEmpty()) {
      spec.set("annotations", annotations);
    }
    ObjectNode linux = spec.putObject("linux");
    ArrayNode ns = linux.putArray("namespaces");
    for (String t : List.of("pid", "network", "ipc", "uts", "mount")) {
      if (!t.equals("network")
          || !o.network()) { // runsc gives a sandbox with its own netns no host network
        ns.addObject().put("type", t);
      }
    }
    if (!o.devices().isEmpty()) {
      // nvproxy makes a device file in the sandbox's /dev for each of these, and no others
      ArrayNode devices = linux.putArray("devices");
      for (SandboxOptions.Device d : o.devices()) {
        devices
            .addObject()
            .put("path", d.path())
            .put("type", "c")
            .put("major", d.major())
            .put("minor", d.minor())
            .put("fileMode", 0666)
            .put("uid", 0)
            .put("gid", 0);
      }
    }
    limits(linux, o, cgroupsPath);
    if (o.runc() && !o.devices().isEmpty()) {
      // runc makes the nodes; its device cgroup must let the container open them
      ObjectNode res =
          linux.has("resources")
              ? (ObjectNode) linux.get("resources")
              : linux.putObject("resources");
      ArrayNode rules = res.putArray("devices");
      for (SandboxOptions.Device d : o.devices()) {
        rules
            .addObject()
            .put("allow", true)
            .put("type", "c")
            .put("major", d.major())
            .put("minor", d.minor())
            .put("access", "rwm");
      }
    }
    return json(spec);
  }

  /**
   * Sets the spec's {@code linux} limits to the options' memory and CPU under {@code cgroupsPath},
   * replacing any it had; null leaves them out (limits not applied).
   */
  static void limits(ObjectNode linux, SandboxOptions o, String cgroupsPath) {
    linux.remove("cgroupsPath");
    linux.remove("resources");
    if (cgroupsPath != null && (o.memoryBytes() > 0 || o.cpus() > 0)) {
      linux.put("cgroupsPath", cgroupsPath);
      ObjectNode res = linux.putObject("resources");
      if (o.memoryBytes() > 0) {
        res.putObject("memory").put("limit", o.memoryBytes());
      }
      if (o.cpus() > 0) {
        long period = 100_000;
        res.putObject("cpu")
            .put("quota", Math.max(1000, Math.round(o.cpus() * period)))
            .put("period", period);
      }
    }
  }

  static byte[] json(ObjectNode node) throws IOException {
    return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(node);
  }

  static ObjectNode processJson(Process p) {
    return processJson(p, false);
  }

  /**
   * The process's JSON; under runc ({@code runc}) without the file limit gVisor is given, which the
   * host's own limit may not allow (runc sets it with the host kernel).
   */
  static ObjectNode processJson(Process p, boolean runc) {
    ObjectNode proc = JSON.createObjectNode();
    proc.put("terminal", false);
    ObjectNode user = proc.putObject("user");
    user.put("uid", p.uid());
    user.put("gid", p.gid());
    ArrayNode args = proc.putArray("args");
    p.args().forEach(args::add);
    ArrayNode env = proc.putArray("env");
    p.env().forEach(env::add);
    proc.put("cwd", p.cwd());
    ObjectNode caps = proc.putObject("capabilities");
    for (String set : List.of("bounding", "effective", "permitted")) {
      ArrayNode a = caps.putArray(set);
      if (set.equals("bounding") || p.uid() == 0) {
        CAPS.forEach(a::add);
      }
    }
    if (!runc) {
      ArrayNode rl = proc.putArray("rlimits");
      rl.addObject().put("type", "RLIMIT_NOFILE").put("hard", 1048576).put("soft", 1048576);
    }
    proc.put("noNewPrivileges", true);
    return proc;
  }

  private static void mount(
      ArrayNode mounts, String dest, String type, String source, List<String> options) {
    ObjectNode m = mounts.addObject();
    m.put("destination", dest);
    m.put("type", type);
    m.put("source", source);
    if (!options.isEmpty()) {
      ArrayNode a = m.putArray("options");
      options.forEach(a::add);
    }
  }
}
