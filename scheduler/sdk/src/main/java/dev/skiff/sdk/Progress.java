package dev.skiff.sdk;

import java.util.concurrent.atomic.AtomicLong;

/** A map's progress line on a terminal (stderr), redrawn five times a second; nothing elsewhere. */
final class Progress {
  private static final Progress NONE = new Progress(null);
  private final String function;
  private final AtomicLong sent = new AtomicLong();
  private final AtomicLong done = new AtomicLong();
  private final long start = System.nanoTime();
  private volatile Thread drawer;

  private Progress(String function) {
    this.function = function;
  }

  static Progress start(String function, boolean wanted) {
    if (!wanted || !onTerminal()) {
      return NONE;
    }
    Progress p = new Progress(function);
    p.drawer =
        Thread.ofVirtual()
            .name("skiff-progress")
            .start(
                () -> {
                  try {
                    while (!Thread.currentThread().isInterrupted()) {
                      Thread.sleep(200);
                      p.draw(false);
                    }
                  } catch (InterruptedException e) {
                    // the map ended
                  }
                });
    return p;
  }

  /**
   * Whether standard error is a terminal, as far as the JDK says: no console at all, or (JDK 22+,
   * where a console may stand for redirected streams) one that says it is not a terminal.
   */
  private static boolean onTerminal() {
    java.io.Console console = System.console();
    if (console == null) {
      return false;
    }
    try {
      return (Boolean) java.io.Console.class.getMethod("isTerminal").invoke(console);
    } catch (ReflectiveOperationException e) {
      return true; // JDK 21: a console is a terminal
    }
  }

  void sent() {
    sent.incrementAndGet();
  }

  void done() {
    done.incrementAndGet();
  }

  void stop() {
    Thread d = drawer;
    if (d != null) {
      d.interrupt();
      draw(true);
    }
  }

  private void draw(boolean last) {
    double secs = Math.max(1e-3, (System.nanoTime() - start) / 1e9);
    System.err.printf(
        "\r  map %s: %,d of %,d done, %,.0f/s%s",
        function, done.get(), sent.get(), done.get() / secs, last ? "\n" : "");
    System.err.flush();
  }
}
