package dev.skiff.casfs.testing;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/** A {@link System#nanoTime} that stands still until a test moves it on. Thread safe. */
public final class FakeClock implements LongSupplier {
  private final AtomicLong nanos = new AtomicLong(1_000_000_000_000L);

  @Override
  public long getAsLong() {
    return nanos.get();
  }

  public void advance(Duration d) {
    nanos.addAndGet(d.toNanos());
  }
}
