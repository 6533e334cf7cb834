package dev.skiff.casfs.store;

import java.time.Duration;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Whether a remote store answers, shared by every caller of one store (a circuit breaker). While
 * calls get answers (any status, "not found" included) they all go out. A call that gets none (it
 * timed out, or its connection was refused or reset) marks the store down: from then on calls fail
 * at once with a {@link StoreUnavailableException} naming the store and that error, except that
 * once a cool-down has passed one call at a time goes out as a probe. The first call that gets an
 * answer, probe or not, marks the store up again, so a mount recovers by itself. A call that got no
 * answer although another one, started later, did, says only that one request was slow, and does
 * not mark the store down.
 *
 * <p>So a hung store costs one call timeout per read, not one per call a read makes, and a dead one
 * is not asked again by every reader. Time comes from an injected clock ({@link System#nanoTime} in
 * production). Thread safe.
 */
final class StoreHealth {
  private static final Logger LOG = LoggerFactory.getLogger(StoreHealth.class);

  /**
   * A call let through at {@code started}; {@code probe}: the one call trying a store marked down.
   */
  record Admission(boolean probe, long started) {}

  private final String store;
  private final LongSupplier clock;
  private final long coolDownNanos;
  // Guarded by this.
  private boolean down;
  private boolean probing;
  private long probeAt;
  private String lastError;
  private boolean everAnswered;
  private long lastAnswerStarted;

  StoreHealth(String store, Duration coolDown, LongSupplier nanoClock) {
    this.store = store;
    this.coolDownNanos = coolDown.toNanos();
    this.clock = nanoClock;
  }

  /**
   * Lets a call go out, or fails it at once while the store is down and it is not the probe's turn.
   */
  synchronized Admission admit(String what) throws StoreUnavailableException {
    long now = clock.getAsLong();
    if (!down) {
      return new Admission(false, now);
    }
    if (!probing && now - probeAt >= 0) {
      probing = true;
      return new Admission(true, now);
    }
    long wait = Math.max(1, (probeAt - now + 999_999_999L) / 1_000_000_000L);
    throw new StoreUnavailableException(
        what
            + ": "
            + store
            + " is not answering (last error: "
            + lastError
            + "); "
            + (probing
                ? "a call is checking whether it is back"
                : "the next call tries again in " + wait + " s"));
  }

  /** The call got an answer from the store (whatever its status). */
  synchronized void answered(Admission a) {
    if (a.probe()) {
      probing = false;
    }
    if (!everAnswered || a.started() - lastAnswerStarted > 0) {
      everAnswered = true;
      lastAnswerStarted = a.started();
    }
    if (down) {
      down = false;
      LOG.info("{} answers again", store);
    }
  }

  /** The call got no answer: it timed out, or its connection was refused or reset. */
  synchronized void unanswered(Admission a, String error) {
    if (a.probe()) {
      probing = false;
    }
    if (!down && everAnswered && lastAnswerStarted - a.started() > 0) {
      LOG.debug("{}: no answer, but a later call got one: {}", store, error);
      return;
    }
    lastError = error;
    probeAt = clock.getAsLong() + coolDownNanos;
    if (!down) {
      // DEBUG: the call that failed reports the error to its caller (a command prints it, a mount
      // logs the failed read); the ones failing at once after it say why in their message.
      down = true;
      LOG.debug(
          "{} is not answering ({}); calls fail at once, but for one every {} s",
          store,
          error,
          Math.max(1, coolDownNanos / 1_000_000_000L));
    } else {
      LOG.debug("{} is still not answering: {}", store, error);
    }
  }

  /** The call ended without telling anything about the store (interrupted, cancelled). */
  synchronized void abandoned(Admission a) {
    if (a.probe()) {
      probing = false;
    }
  }

  synchronized boolean isDown() {
    return down;
  }
}
