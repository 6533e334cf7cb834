package dev.skiff.scheduler.control;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class CoalescerTest {
  @Test
  void aLoneItemGoesAtOnce() {
    List<List<Integer>> sent = new ArrayList<>();
    Coalescer<Integer> c = new Coalescer<>(10, i -> 1, 100, sent::add);
    c.add(1);
    assertEquals(List.of(List.of(1)), sent);
  }

  @Test
  void itemsAddedWhileASendIsInProgressGoTogetherInOrderAndWithinTheBounds() throws Exception {
    int threads = 8;
    int each = 5_000;
    List<List<Integer>> sent = new ArrayList<>();
    AtomicInteger inSink = new AtomicInteger();
    AtomicInteger overlaps = new AtomicInteger();
    Coalescer<Integer> c =
        new Coalescer<>(
            64,
            i -> 10,
            300, // at most 30 items by size
            batch -> {
              if (inSink.incrementAndGet() != 1) {
                overlaps.incrementAndGet();
              }
              sent.add(batch);
              Thread.onSpinWait();
              inSink.decrementAndGet();
            });
    CountDownLatch go = new CountDownLatch(1);
    List<Thread> ts = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      int base = t * each;
      ts.add(
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      go.await();
                    } catch (InterruptedException e) {
                      return;
                    }
                    for (int i = 0; i < each; i++) {
                      c.add(base + i);
                    }
                  }));
    }
    go.countDown();
    for (Thread t : ts) {
      t.join();
    }
    assertEquals(0, overlaps.get(), "the sink was called by two threads at once");
    int total = 0;
    int[] last = new int[threads];
    java.util.Arrays.fill(last, -1);
    for (List<Integer> batch : sent) {
      assertTrue(batch.size() <= 30, "a batch over the size bound: " + batch.size());
      for (int i : batch) {
        int t = i / each;
        assertTrue(i > last[t], "out of order for thread " + t);
        last[t] = i;
        total++;
      }
    }
    assertEquals(threads * each, total, "every item sent exactly once");
  }

  @Test
  void anItemLargerThanTheSizeBoundStillGoesAlone() {
    List<List<Integer>> sent = new ArrayList<>();
    Coalescer<Integer> c = new Coalescer<>(10, i -> i, 100, sent::add);
    c.add(500);
    assertEquals(List.of(List.of(500)), sent);
  }
}
