package dev.skiff.tracer;

import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.pack.ChunkLocation;
import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Replays a trace as prefetch: fetches its chunks in trace order, at most {@code concurrency} at
 * once, through the chunk reader (so a chunk a reader already wants is fetched once, and the
 * reader's 1 MiB pack windows merge neighbours). Readers are never queued behind it: their demand
 * fetches run on their own threads. Chunks the image does not have (a stale trace, or one recorded
 * on another image) are skipped. Stops when the trace is done or on {@link #close}.
 */
public final class TracePrefetcher implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(TracePrefetcher.class);

  private final ExecutorService workers;
  private final Thread feeder;
  private final AtomicBoolean stopped = new AtomicBoolean();
  private final LongAdder fetched = new LongAdder();
  private final LongAdder skipped = new LongAdder();
  private volatile boolean done;

  private TracePrefetcher(Trace trace, ImageIndex index, ChunkReader reader, int concurrency) {
    Map<Digest, ChunkLocation> here = index.allChunks();
    Semaphore slots = new Semaphore(concurrency);
    workers =
        Executors.newFixedThreadPool(
            concurrency,
            r -> {
              Thread t = new Thread(r, "skiff-prefetch");
              t.setDaemon(true);
              return t;
            });
    feeder =
        new Thread(
            () -> {
              try {
                for (Trace.Entry e : trace.entries()) {
                  if (stopped.get()) {
                    return;
                  }
                  ChunkLocation loc = here.get(e.digest());
                  if (loc == null) {
                    skipped.increment();
                    continue;
                  }
                  slots.acquire();
                  workers.execute(
                      () -> {
                        try {
                          if (!stopped.get()) {
                            reader.get(loc);
                            fetched.increment();
                          }
                        } catch (IOException ex) {
                          LOG.debug("prefetch of {} failed: {}", loc.digest(), ex.toString());
                        } finally {
                          slots.release();
                        }
                      });
                }
                slots.acquire(concurrency);
              } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
              } finally {
                done = true;
              }
            },
            "skiff-prefetch-feeder");
    feeder.setDaemon(true);
  }

  /** Starts replaying {@code trace} against {@code index}. */
  public static TracePrefetcher start(
      Trace trace, ImageIndex index, ChunkReader reader, int concurrency) {
    TracePrefetcher p = new TracePrefetcher(trace, index, reader, Math.max(1, concurrency));
    p.feeder.start();
    return p;
  }

  /** Chunks fetched (or found cached) by the replay so far. */
  public long fetched() {
    return fetched.sum();
  }

  /** Trace entries the image does not have. */
  public long skipped() {
    return skipped.sum();
  }

  public boolean isDone() {
    return done;
  }

  /** Waits for the replay to finish (tests, benchmarks). */
  public void awaitDone(long millis) throws InterruptedException {
    feeder.join(millis);
  }

  /** Stops the replay; fetches in flight finish. Idempotent. */
  @Override
  public void close() {
    if (stopped.compareAndSet(false, true)) {
      feeder.interrupt();
      workers.shutdown();
    }
  }
}
