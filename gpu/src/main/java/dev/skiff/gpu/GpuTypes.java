package dev.skiff.gpu;

import dev.skiff.api.GpuRequest;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Model names as drivers print them, made the types that functions request ({@link GpuRequest}).
 */
public final class GpuTypes {
  private GpuTypes() {}

  private static final List<String> PLAIN = List.of("B200", "H200", "H100", "L40S", "A10G", "T4");
  private static final Pattern L4 = Pattern.compile(".*\\bL4\\b.*");
  private static final Pattern A10 = Pattern.compile(".*\\bA10\\b.*");
  private static final Pattern V100 = Pattern.compile(".*\\bV100.*");

  /**
   * The request type of a model ("NVIDIA H100 80GB HBM3" is {@code H100}; an A100 is {@code
   * A100-80GB} or {@code A100-40GB} by its memory), or null for a model no request names.
   *
   * @param memoryMib the GPU's memory, which tells the two A100s apart (0: unknown, read the name)
   */
  public static String of(String model, long memoryMib) {
    String n = model.toUpperCase(Locale.ROOT);
    for (String t : PLAIN) {
      if (n.contains(t)) {
        return t;
      }
    }
    if (n.contains("A100")) {
      boolean big = memoryMib > 0 ? memoryMib > 60 * 1024 : n.contains("80GB");
      return big ? "A100-80GB" : "A100-40GB";
    }
    if (L4.matcher(n).matches()) {
      return "L4";
    }
    if (A10.matcher(n).matches()) {
      return "A10";
    }
    if (V100.matcher(n).matches()) {
      return "V100";
    }
    return null;
  }
}
