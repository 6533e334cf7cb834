package dev.skiff.scheduler.worker;

import dev.skiff.api.GpuRequest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * What GPUs a worker offers: as given ({@code H100:2,A100-80GB}: a fake inventory for tests and for
 * hosts that want to say it themselves), or as {@code nvidia-smi} lists them, names normalised to
 * the types functions request ({@link GpuRequest#KNOWN}).
 */
public final class GpuInventory {
  private GpuInventory() {}

  /** Parses {@code TYPE[:N],...}; blank gives none. */
  public static List<String> parse(String spec) {
    List<String> out = new ArrayList<>();
    if (spec == null || spec.isBlank() || spec.equalsIgnoreCase("none")) {
      return out;
    }
    for (String part : spec.split(",")) {
      GpuRequest g = GpuRequest.parse(part);
      if (g.type().equals(GpuRequest.ANY)) {
        throw new IllegalArgumentException("a worker's GPUs are of a type, not 'any'");
      }
      for (int i = 0; i < g.count(); i++) {
        out.add(g.type());
      }
    }
    return out;
  }

  /** The GPUs {@code nvidia-smi} lists, in its order; none where it is missing or fails. */
  public static List<String> detect() {
    List<String> out = new ArrayList<>();
    try {
      Process p =
          new ProcessBuilder("nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader")
              .redirectErrorStream(true)
              .start();
      String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(20, TimeUnit.SECONDS) || p.exitValue() != 0) {
        return out;
      }
      for (String line : text.split("\n")) {
        if (!line.isBlank()) {
          String type = normalise(line);
          if (type != null) {
            out.add(type);
          }
        }
      }
    } catch (IOException e) {
      // no nvidia-smi: no GPUs
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return out;
  }

  /** A type for an {@code nvidia-smi} line ("NVIDIA H100 80GB HBM3, 81559 MiB"), or null. */
  static String normalise(String line) {
    String n = line.toUpperCase(Locale.ROOT);
    for (String t : List.of("B200", "H200", "H100", "L40S", "A10G", "T4", "V100")) {
      if (n.contains(t)) {
        return t;
      }
    }
    if (n.contains("A100")) {
      return n.contains("80GB") || n.matches(".*\\b8\\d{4} MIB.*") ? "A100-80GB" : "A100-40GB";
    }
    if (n.matches(".*\\bL4\\b.*")) {
      return "L4";
    }
    if (n.matches(".*\\bA10\\b.*")) {
      return "A10";
    }
    return null;
  }
}
