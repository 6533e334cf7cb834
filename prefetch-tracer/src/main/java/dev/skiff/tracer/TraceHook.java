package dev.skiff.tracer;

import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.fs.ChunkAccessListener;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.mount.ImageMount;
import dev.skiff.casfs.mount.MountHook;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;

/**
 * Start-up traces on a mount: the image's trace is fetched while its index travels, replayed as
 * prefetch once the index is open, and, when recording, what the mount read first is merged into
 * the trace (in the store the image came from) when it is unmounted. One hook per mount.
 */
public final class TraceHook implements MountHook {

  /**
   * @param prefetch replay the image's trace
   * @param record record first reads into the trace
   * @param key which start profile (null: the image's main one)
   * @param fetchThreads how many chunks the replay fetches at once
   */
  public record Options(boolean prefetch, boolean record, String key, int fetchThreads) {
    public static Options defaults() {
      return new Options(true, false, null, 8);
    }

    public Options withPrefetch(boolean on) {
      return new Options(on, record, key, fetchThreads);
    }

    public Options withRecord(boolean on) {
      return new Options(prefetch, on, key, fetchThreads);
    }

    public Options withKey(String k) {
      return new Options(prefetch, record, k, fetchThreads);
    }
  }

  /** What a recording added to the image's trace. */
  public record Recorded(Trace recording, Trace merged) {}

  private final Options options;
  private BlobStore source;
  private Digest digest;
  private CompletableFuture<Optional<Trace>> pending;
  private Trace trace;
  private TracePrefetcher replay;
  private long replayStart;
  private TraceRecorder recorder;
  private ImageIndex index;
  private Recorded recorded;

  public TraceHook(Options options) {
    this.options = options;
    BlobNames.checkTraceKey(options.key());
  }

  @Override
  public void resolved(BlobStore source, Digest index, Executor executor) {
    this.source = source;
    this.digest = index;
    if (options.prefetch()) {
      pending =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return TraceStore.load(source, index, options.key());
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              },
              executor);
    }
  }

  @Override
  public ChunkAccessListener opened(ImageIndex index, ChunkReader chunks) throws IOException {
    this.index = index;
    if (pending != null) {
      trace = await(pending).orElse(null);
    }
    replayStart = System.nanoTime();
    if (trace != null) {
      replay = TracePrefetcher.start(trace, index, chunks, options.fetchThreads());
    }
    recorder = options.record() ? new TraceRecorder() : null;
    return recorder;
  }

  private static Optional<Trace> await(CompletableFuture<Optional<Trace>> f) throws IOException {
    try {
      return f.join();
    } catch (CompletionException e) {
      if (e.getCause() instanceof UncheckedIOException io) {
        throw io.getCause();
      }
      throw e;
    }
  }

  /** Stops the replay and saves what was recorded (see {@link #recorded()}). */
  @Override
  public void unmounted(ImageMount mount) throws IOException {
    if (replay != null) {
      replay.close();
    }
    if (recorder != null && recorder.size() > 0) {
      Trace recording = recorder.toTrace(index);
      recorded =
          new Recorded(recording, TraceStore.record(source, digest, options.key(), recording));
    }
  }

  /** The trace being replayed, or empty. */
  public Optional<Trace> trace() {
    return Optional.ofNullable(trace);
  }

  /** The replay of the trace, or empty. */
  public Optional<TracePrefetcher> replay() {
    return Optional.ofNullable(replay);
  }

  /** When the replay started ({@link System#nanoTime()}). */
  public long replayStartNanos() {
    return replayStart;
  }

  public boolean recording() {
    return recorder != null;
  }

  /** What the recording added to the trace, once the mount is closed; empty if nothing was read. */
  public Optional<Recorded> recorded() {
    return Optional.ofNullable(recorded);
  }
}
