package dev.skiff.scheduler.control;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.function.ToIntFunction;

/**
 * Sends items in batches without a thread of its own: whoever adds an item and finds no send in
 * progress sends everything queued, in one batch, and goes on while more arrived meanwhile; the
 * others only queue. One item alone goes at once; items that arrive together go together, up to a
 * count and a size (a batch is a message: it must stay under the transport's limit). The sink is
 * never called by two threads at once, and batches keep the order items were added in.
 */
public final class Coalescer<T> {
  private final ConcurrentLinkedQueue<T> queue = new ConcurrentLinkedQueue<>();
  private final AtomicBoolean sending = new AtomicBoolean();
  private final int max;
  private final ToIntFunction<T> size;
  private final long maxBytes;
  private final Consumer<List<T>> sink;

  /** Batches of at most {@code max} items and {@code maxBytes} (by {@code size}; one is enough). */
  public Coalescer(int max, ToIntFunction<T> size, long maxBytes, Consumer<List<T>> sink) {
    this.max = max;
    this.size = size;
    this.maxBytes = maxBytes;
    this.sink = sink;
  }

  public void add(T item) {
    queue.add(item);
    while (!queue.isEmpty() && sending.compareAndSet(false, true)) {
      try {
        List<T> batch = new ArrayList<>();
        long bytes = 0;
        for (T t; batch.size() < max && (t = queue.peek()) != null; ) {
          int n = size.applyAsInt(t);
          if (!batch.isEmpty() && bytes + n > maxBytes) {
            break;
          }
          batch.add(queue.poll());
          bytes += n;
        }
        if (!batch.isEmpty()) {
          sink.accept(batch);
        }
      } finally {
        sending.set(false);
      }
    }
  }
}
