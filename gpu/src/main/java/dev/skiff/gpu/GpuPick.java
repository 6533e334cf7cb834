package dev.skiff.gpu;

import dev.skiff.api.GpuRequest;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Chooses a host's GPUs for requests in rank order ({@code H100, A100-80GB:2, any}): the first rank
 * whose count of free GPUs of its type (of any type, for {@code any}) this host has, claimed at
 * once so that nothing else takes them.
 */
public final class GpuPick {
  private GpuPick() {}

  /**
   * Claims the GPUs of the first rank that can be had.
   *
   * @throws IllegalArgumentException if no rank can: the message says what this host has and what
   *     of it is free
   */
  public static GpuClaims.Claim claim(
      GpuHost host, List<GpuRequest> ranks, GpuClaims claims, String holder) throws IOException {
    for (GpuRequest r : ranks) {
      if (r.type().equals(GpuRequest.ANY)) {
        // one type for all of them: the type with the most free first
        Map<String, List<Gpu>> byType = new TreeMap<>();
        for (Gpu g : host.gpus()) {
          byType.computeIfAbsent(offered(g), k -> new ArrayList<>()).add(g);
        }
        for (List<Gpu> same : byType.values()) {
          var got = claims.claim(same, r.count(), holder);
          if (got.isPresent()) {
            return got.get();
          }
        }
      } else {
        List<Gpu> same = host.gpus().stream().filter(g -> r.type().equals(g.type())).toList();
        var got = claims.claim(same, r.count(), holder);
        if (got.isPresent()) {
          return got.get();
        }
      }
    }
    Map<String, int[]> seen = new TreeMap<>();
    for (Gpu g : host.gpus()) {
      int[] c = seen.computeIfAbsent(offered(g), k -> new int[2]);
      c[0]++;
      if (!claims.inUse(g)) {
        c[1]++;
      }
    }
    List<String> has = new ArrayList<>();
    seen.forEach((t, c) -> has.add(c[0] + " " + t + " (" + c[1] + " free)"));
    throw new IllegalArgumentException(
        "no free GPUs for "
            + String.join(", ", ranks.stream().map(GpuPick::text).toList())
            + " on this host: it has "
            + (has.isEmpty()
                ? "none" + (host.note().isEmpty() ? "" : " (" + host.note() + ")")
                : String.join(", ", has)));
  }

  private static String offered(Gpu g) {
    return g.type() != null ? g.type() : g.model();
  }

  static String text(GpuRequest r) {
    return r.count() == 1 ? r.type() : r.type() + ":" + r.count();
  }
}
