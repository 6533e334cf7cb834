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
}
