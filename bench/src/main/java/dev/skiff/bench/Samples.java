package dev.skiff.bench;

import java.util.List;

/** Median, min and max of repeated measurements. */
final class Samples {
  private Samples() {}

  static double median(List<Double> v) {
    double[] a = v.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
  }

  static double min(List<Double> v) {
    return v.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
  }

  static double max(List<Double> v) {
    return v.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN);
  }

  /** "median (min-max)", each number in {@code fmt} (for example %.3f). */
  static String spread(List<Double> v, String fmt) {
    return String.format(
        java.util.Locale.ROOT, fmt + " (" + fmt + "-" + fmt + ")", median(v), min(v), max(v));
  }
}
