package dev.skiff.api;

import java.util.Locale;

/**
 * What a sandbox may use: CPU in cores (fractions allowed) and memory in bytes; 0 means no limit.
 * GPU requests join these in their own type.
 */
public record Resources(double cpus, long memoryBytes) {
  public static final Resources UNLIMITED = new Resources(0, 0);

  public Resources {
    if (!(cpus >= 0) || Double.isInfinite(cpus)) {
      throw new IllegalArgumentException(
          "CPU limit must be a number of cores of 0 or more, got " + cpus);
    }
    if (memoryBytes < 0) {
      throw new IllegalArgumentException("memory limit must not be negative, got " + memoryBytes);
    }
  }

  /**
   * {@code --cpus 1.5 --memory 1G} as values: {@code of("1.5", "1G")}; null or blank means no
   * limit.
   */
  public static Resources of(String cpus, String memory) {
    double c;
    try {
      c = cpus == null || cpus.isBlank() ? 0 : Double.parseDouble(cpus.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "not a number of CPUs: '" + cpus + "' (examples: 1, 0.5, 4)");
    }
    return new Resources(c, memory == null || memory.isBlank() ? 0 : parseBytes(memory));
  }

  /**
   * Parses a size: a number of bytes, or with a binary suffix K, M, G, T (optionally followed by B
   * or iB, any case): {@code 512M}, {@code 1.5G}, {@code 20GiB}, {@code 1048576}.
   */
  public static long parseBytes(String s) {
    String t = s.trim().toUpperCase(Locale.ROOT);
    if (t.endsWith("IB")) {
      t = t.substring(0, t.length() - 2);
    } else if (t.endsWith("B")) {
      t = t.substring(0, t.length() - 1);
    }
    long mult = 1;
    char last = t.isEmpty() ? '0' : t.charAt(t.length() - 1);
    switch (last) {
      case 'K' -> mult = 1L << 10;
      case 'M' -> mult = 1L << 20;
      case 'G' -> mult = 1L << 30;
      case 'T' -> mult = 1L << 40;
      default -> {}
    }
    if (mult != 1) {
      t = t.substring(0, t.length() - 1);
    }
    double v;
    try {
      v = Double.parseDouble(t);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not a size: '" + s + "' (examples: 512M, 20G)");
    }
    if (!(v >= 0) || v * mult >= Long.MAX_VALUE) {
      throw new IllegalArgumentException("not a size: '" + s + "' (examples: 512M, 20G)");
    }
    return (long) (v * mult);
  }
}
