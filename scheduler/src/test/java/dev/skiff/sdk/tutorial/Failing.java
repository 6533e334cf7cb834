package dev.skiff.sdk.tutorial;

import java.time.Duration;

/** Handlers that fail in the ways a caller must tell apart. */
public final class Failing {
  private Failing() {}

  /** Throws, with a cause: the caller gets both, types and messages kept. */
  public static int divide(int x) {
    try {
      return 100 / x;
    } catch (ArithmeticException e) {
      throw new IllegalStateException("cannot divide by " + x, e);
    }
  }

  /** Sleeps for as many milliseconds as it is told. */
  public static long sleep(long millis) throws InterruptedException {
    Thread.sleep(Duration.ofMillis(millis));
    return millis;
  }
}
