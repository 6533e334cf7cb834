package dev.skiff.scheduler.worker;

import dev.skiff.api.GpuRequest;
import java.util.ArrayList;
import java.util.List;

/**
 * GPUs a worker is told it offers ({@code H100:2,A100-80GB}): a declared inventory, for tests and
 * for hosts that want to say it themselves. A host's own GPUs are read by module {@code gpu}.
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
}
