package dev.skiff.api;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * A request for GPUs: a type and a count, as written {@code H100}, {@code A100-80GB:2}, {@code any}
 * or {@code any:4}. Functions list several in rank order; placement tries each in turn.
 */
public record GpuRequest(String type, int count) {
  /** The GPU types a request may name (as NVML's model names are normalised to). */
  public static final List<String> KNOWN =
      List.of(
          "B200",
          "H200",
          "H100",
          "A100-80GB",
          "A100-40GB",
          "L40S",
          "L4",
          "A10",
          "A10G",
          "T4",
          "V100");

  public static final String ANY = "any";

  public GpuRequest {
    if (count < 1 || count > 16) {
      throw new IllegalArgumentException("a GPU count must be 1 to 16, got " + count);
    }
    if (!type.equals(ANY) && !KNOWN.contains(type)) {
      throw new IllegalArgumentException(
          "unknown GPU type '" + type + "': want one of " + String.join(", ", KNOWN) + " or any");
    }
  }

  /** Parses {@code TYPE[:N]} (case-insensitive type; A100 means the 40 GB one). */
  public static GpuRequest parse(String text) {
    String t = text.trim();
    int colon = t.lastIndexOf(':');
    int count = 1;
    if (colon > 0) {
      try {
        count = Integer.parseInt(t.substring(colon + 1));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("bad GPU count in '" + text + "': want TYPE[:N]");
      }
      t = t.substring(0, colon);
    }
    String type = t.toUpperCase(Locale.ROOT);
    if (type.equals("ANY")) {
      type = ANY;
    } else if (type.equals("A100")) {
      type = "A100-40GB";
    }
    return new GpuRequest(type, count);
  }

  /**
   * Which of {@code free} GPUs (type to count) this request takes: {@code count} of its type (any
   * type, for {@code any}: the most plentiful first), or an empty list if they are not there.
   */
  public List<String> pick(Map<String, Integer> free) {
    List<String> out = new ArrayList<>();
    if (type.equals(ANY)) {
      Map<String, Integer> left = new TreeMap<>(free);
      for (var e : left.entrySet()) {
        if (e.getValue() >= count) {
          for (int i = 0; i < count; i++) {
            out.add(e.getKey());
          }
          return out;
        }
      }
      return List.of();
    }
    if (free.getOrDefault(type, 0) < count) {
      return List.of();
    }
    for (int i = 0; i < count; i++) {
      out.add(type);
    }
    return out;
  }

  @Override
  public String toString() {
    return count == 1 ? type : type + ":" + count;
  }
}
