package dev.skiff.sdk;

import java.time.Duration;

/**
 * A function's retry policy for its handler's errors and timeouts: how many times to try again,
 * waiting {@code initialDelay}, then {@code backoff} times longer each time, at most {@code
 * maxDelay}. Failures of the platform (a worker lost, a container crashed) are retried apart from
 * this and do not count against it. Immutable.
 *
 * @param maxRetries retries after the first attempt, 0 to 100
 * @param backoff the delay's multiplier between attempts, at least 1
 */
public record Retries(int maxRetries, double backoff, Duration initialDelay, Duration maxDelay) {
  public Retries {
    if (maxRetries < 0 || maxRetries > 100) {
      throw new IllegalArgumentException("retries must be 0 to 100, not " + maxRetries);
    }
    if (backoff < 1) {
      throw new IllegalArgumentException(
          "a backoff multiplies the delay: at least 1, not " + backoff);
    }
    if (initialDelay.isNegative() || maxDelay.compareTo(initialDelay) < 0) {
      throw new IllegalArgumentException(
          "delays must not be negative, and the maximum not below the initial one");
    }
  }

  /** No retries. */
  public static Retries none() {
    return new Retries(0, 1, Duration.ZERO, Duration.ZERO);
  }

  /** {@code maxRetries} retries, 1 s apart, then twice as long each time, at most 60 s. */
  public static Retries exponential(int maxRetries) {
    return new Retries(maxRetries, 2, Duration.ofSeconds(1), Duration.ofSeconds(60));
  }

  /** {@code maxRetries} retries, {@code delay} apart. */
  public static Retries fixed(int maxRetries, Duration delay) {
    return new Retries(maxRetries, 1, delay, delay);
  }

  /** This policy with another first delay (the maximum rises to it if lower). */
  public Retries withInitialDelay(Duration delay) {
    return new Retries(
        maxRetries, backoff, delay, maxDelay.compareTo(delay) < 0 ? delay : maxDelay);
  }

  /** This policy with another longest delay. */
  public Retries withMaxDelay(Duration delay) {
    return new Retries(maxRetries, backoff, initialDelay, delay);
  }
}
