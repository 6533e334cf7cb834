package dev.skiff.tools;

import java.util.Locale;

/** Numbers a person can read. */
final class Human {
  private Human() {}

  static String bytes(long n) {
    if (n < 1024) {
      return n + " B";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = n;
    int u = -1;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return String.format(Locale.ROOT, v >= 100 ? "%.0f %s" : "%.1f %s", v, units[u]);
  }

  static String ratio(double r) {
    return Double.isInfinite(r) ? "all shared" : String.format(Locale.ROOT, "%.2fx", r);
  }

  static String count(long n) {
    return String.format(Locale.ROOT, "%,d", n);
  }

  /** Parses sizes such as 512M, 20G, 1048576. */
  static long parseBytes(String s) {
    String t = s.trim().toUpperCase(Locale.ROOT).replace("IB", "").replace("B", "");
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
    try {
      return (long) (Double.parseDouble(t) * mult);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not a size: '" + s + "' (examples: 512M, 20G)");
    }
  }
}
