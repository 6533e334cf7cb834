package dev.skiff.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The parts of an OCI image configuration that decide how a process starts: environment, entrypoint
 * and command, working directory and user. Images imported from a plain rootfs have no
 * configuration; they get the defaults (PATH, root, and {@code workdir} empty: none named).
 */
public record ImageConfig(
    List<String> env, List<String> entrypoint, List<String> cmd, String workdir, String user) {
  static final String DEFAULT_PATH =
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  private static final ObjectMapper JSON = new ObjectMapper();

  public static ImageConfig defaults() {
    return new ImageConfig(List.of(DEFAULT_PATH), List.of(), List.of(), "", "");
  }

  /** The image's working directory, or {@code fallback} (null: {@code /}) where it names none. */
  public String workdirOr(String fallback) {
    return !workdir.isEmpty() ? workdir : fallback != null ? fallback : "/";
  }

  /** Parses the image's config JSON (as stored in its index); null or blank gives the defaults. */
  public static ImageConfig parse(String json) throws IOException {
    if (json == null || json.isBlank()) {
      return defaults();
    }
    JsonNode c = JSON.readTree(json).path("config");
    List<String> env = strings(c.path("Env"));
    if (env.stream().noneMatch(e -> e.startsWith("PATH="))) {
      env.add(0, DEFAULT_PATH);
    }
    String wd = c.path("WorkingDir").asText("");
    return new ImageConfig(
        List.copyOf(env),
        List.copyOf(strings(c.path("Entrypoint"))),
        List.copyOf(strings(c.path("Cmd"))),
        wd,
        c.path("User").asText(""));
  }

  private static List<String> strings(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asText()));
    return out;
  }

  /**
   * The argv of a process: the entrypoint followed by {@code args}, or by the image's command when
   * no args are given (as {@code docker run} does).
   */
  public List<String> argv(List<String> args) {
    List<String> out = new ArrayList<>(entrypoint);
    out.addAll(args.isEmpty() ? cmd : args);
    return out;
  }

  /**
   * The environment with {@code overrides} (NAME=VALUE) replacing or adding variables, in order.
   */
  public List<String> env(List<String> overrides) {
    List<String> out = new ArrayList<>(env);
    for (String kv : overrides) {
      int eq = kv.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException(
            "bad environment variable '" + kv + "': want NAME=VALUE");
      }
      String prefix = kv.substring(0, eq + 1);
      out.removeIf(e -> e.startsWith(prefix));
      out.add(kv);
    }
    return out;
  }
}
