package dev.skiff.bench.sdk;

import dev.skiff.sdk.Enter;
import java.util.ArrayList;
import java.util.List;

/** The Java handlers the SDK benchmark runs. */
public final class BenchFunctions {
  private BenchFunctions() {}

  /** A trivial handler: the platform's cost alone. */
  public static int echo(int x) {
    return x;
  }

  /** Bytes back as they came: the cost of carrying them. */
  public static byte[] echoBytes(byte[] b) {
    return b;
  }

  /**
   * A handler whose container pays for a start-up: its {@link Enter} method loads and exercises a
   * few thousand classes' worth of work (collections, streams, string formatting), as a real
   * service's start does, so a memory snapshot has something to save.
   */
  public static final class Warmed {
    private List<String> table = List.of();

    @Enter
    void load() {
      List<String> t = new ArrayList<>();
      for (int i = 0; i < 200_000; i++) {
        t.add(String.format("%08x", i * 2654435761L));
      }
      table = t.stream().sorted().limit(1000).toList();
    }

    public int lookup(int i) {
      return table.get(Math.floorMod(i, table.size())).length();
    }
  }
}
