package dev.skiff.sdk;

/**
 * How a {@code map} runs: results in input order (the default) or as they finish, how many inputs
 * may be outstanding at once, and whether a progress line is drawn on a terminal. Immutable.
 */
public record MapOptions(boolean ordered, int window, boolean progress) {
  public MapOptions {
    if (window < 1) {
      throw new IllegalArgumentException("a map needs room for at least one input, not " + window);
    }
  }

  /** In order, up to 10,000 inputs outstanding, a progress line on a terminal. */
  public static MapOptions defaults() {
    return new MapOptions(true, 10_000, true);
  }

  /** Results as they finish, not in input order. */
  public MapOptions unordered() {
    return new MapOptions(false, window, progress);
  }

  /** At most {@code inputs} outstanding at once. */
  public MapOptions window(int inputs) {
    return new MapOptions(ordered, inputs, progress);
  }

  /** No progress line, even on a terminal. */
  public MapOptions quiet() {
    return new MapOptions(ordered, window, false);
  }
}
