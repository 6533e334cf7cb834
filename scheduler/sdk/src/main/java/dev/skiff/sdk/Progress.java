package dev.skiff.sdk;

import java.io.PrintStream;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A long map's progress line on a terminal (stderr): drawn once the map has run for a second,
 * redrawn five times a second, ended with a newline when the map ends. A map that ends sooner draws
 * nothing, and nothing is drawn where stderr is not a terminal.
 */
final class Progress {
  static final long FIRST_DRAW_MS = 1000;
  static final long REDRAW_MS = 200;

  private static final Progress NONE = new Progress(null, null);
  private final String function;
  private final PrintStream out;
  private final AtomicLong sent = new AtomicLong();
  private final AtomicLong done = new AtomicLong();
  private final long start = System.nanoTime();
  private volatile Thread drawer;
  private boolean drawn; // under this

  private Progress(String function, PrintStream out) {
    this.function = function;
    this.out = out;
  }

  static Progress start(String function, boolean wanted) {
    return wanted && onTerminal() ? start(function, System.err) : NONE;
  }

  /** A progress line drawn on {@code out}, whatever it is. */
  static Progress start(String function, PrintStream out) {
    Progress p = new Progress(function, out);
    p.drawer =
        Thread.ofVirtual()
            .name("skiff-progress")
            .start(
                () -> {
                  try {
                    Thread.sleep(FIRST_DRAW_MS);
                    while (!Thread.currentThread().isInterrupted()) {
                      p.draw(false);
                      Thread.sleep(REDRAW_MS);
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
  static boolean onTerminal() {
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

  /** Ends the line, if one was drawn. */
  void stop() {
    Thread d = drawer;
    if (d != null) {
      d.interrupt();
      try {
        d.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      synchronized (this) {
        if (drawn) {
          draw(true);
        }
      }
    }
  }

  private synchronized void draw(boolean last) {
    drawn = true;
    double secs = Math.max(1e-3, (System.nanoTime() - start) / 1e9);
    out.printf(
        "\r  map %s: %,d of %,d done, %,.0f/s%s",
        function, done.get(), sent.get(), done.get() / secs, last ? "\n" : "");
    out.flush();
  }
}
