package dev.skiff.runtime;

import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;

/** Timer threads for daemons that live for days. */
public final class Timers {
  private Timers() {}

  /**
   * One daemon thread named {@code name} running scheduled tasks. A cancelled task leaves its queue
   * at once: with the default policy every per-call timeout that a call's end cancels would stay
   * queued, with what it holds, until it would have been due (minutes), which at thousands of calls
   * a second is a growing heap.
   */
  public static ScheduledExecutorService single(String name) {
    ScheduledThreadPoolExecutor t =
        new ScheduledThreadPoolExecutor(
            1, r -> Thread.ofPlatform().daemon().name(name).unstarted(r));
    t.setRemoveOnCancelPolicy(true);
    return t;
  }
}
