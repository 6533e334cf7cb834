package dev.skiff.scheduler.control;

import dev.skiff.scheduler.proto.CallRecord;
import dev.skiff.scheduler.state.ControlState;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes call records to the {@link ControlState} on a thread of its own, in batches: whatever has
 * queued up while the last batch was being written goes in the next one, so a thousand results that
 * arrive together cost one durable commit, not a thousand. Each record's {@code then} runs once the
 * record is durable (the scheduler tells a caller a result only then). Records of one call are
 * written in the order they were queued.
 */
final class StateWriter implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(StateWriter.class);
  private static final int MAX_BATCH = 4096;

  private record Entry(CallRecord record, Runnable then) {}

  private static final Entry STOP = new Entry(null, null);

  private final ControlState state;
  private final BlockingQueue<Entry> queue = new LinkedBlockingQueue<>();
  private final Thread thread;

  StateWriter(ControlState state) {
    this.state = state;
    this.thread = Thread.ofPlatform().daemon().name("skiff-state-writer").start(this::run);
  }

  /** Queues {@code record}; {@code then} (may be null) runs once it is durable. */
  void write(CallRecord record, Runnable then) {
    queue.add(new Entry(record, then));
  }

  private void run() {
    List<Entry> batch = new ArrayList<>();
    while (true) {
      try {
        batch.add(queue.take());
      } catch (InterruptedException e) {
        return;
      }
      queue.drainTo(batch, MAX_BATCH - 1);
      boolean stop = batch.remove(STOP);
      if (!batch.isEmpty()) {
        commit(batch);
      }
      batch.clear();
      if (stop) {
        return;
      }
    }
  }

  /** Writes a batch; if that fails, record by record, so one bad record does not hold the rest. */
  private void commit(List<Entry> batch) {
    try {
      state.update(batch.stream().map(Entry::record).toList());
    } catch (IOException | RuntimeException e) {
      LOG.warn(
          "writing {} call records at once failed ({}); writing them one by one",
          batch.size(),
          e.toString());
      for (Entry entry : batch) {
        writeAlone(entry.record());
      }
    }
    for (Entry entry : batch) {
      if (entry.then() != null) {
        try {
          entry.then().run();
        } catch (RuntimeException e) {
          LOG.error("after writing call {}: {}", entry.record().getCallId(), e.toString(), e);
        }
      }
    }
  }

  private void writeAlone(CallRecord r) {
    for (int attempt = 1; ; attempt++) {
      try {
        state.update(r);
        return;
      } catch (IOException | RuntimeException e) {
        if (attempt == 5) {
          LOG.error(
              "could not record call {} after {} attempts: {}",
              r.getCallId(),
              attempt,
              e.toString());
          return;
        }
        try {
          TimeUnit.MILLISECONDS.sleep(100L * attempt);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          return;
        }
      }
    }
  }

  /** Writes what is queued, then stops. */
  @Override
  public void close() {
    queue.add(STOP);
    try {
      thread.join(30_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
