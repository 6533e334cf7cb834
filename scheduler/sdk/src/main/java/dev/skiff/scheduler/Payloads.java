package dev.skiff.scheduler;

import com.google.protobuf.ByteString;
import dev.skiff.scheduler.proto.PayloadChunk;
import dev.skiff.scheduler.proto.PayloadRef;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.function.Function;

/**
 * Payloads too large for the messages that carry calls: a client's input over {@link #INLINE_MAX}
 * is uploaded and the call carries its name; a worker does the same with a large output. Both sides
 * use these helpers, with the stub of the service they may use.
 */
public final class Payloads {
  private Payloads() {}

  /** The most JSON an input or an output carries inline; more goes as a payload. */
  public static final int INLINE_MAX = 2 << 20;

  /** The most a payload may hold. */
  public static final long MAX_BYTES = 64L << 20;

  /**
   * Messages that carry many inputs or results (map streams, runs for a worker, their ends) stay
   * under this size; one inline payload may be 2 MiB, and every channel accepts 80 MiB.
   */
  public static final long BATCH_BYTES = 8L << 20;

  /** Chunks of uploads and downloads. */
  public static final int CHUNK = 1 << 20;

  /**
   * Uploads {@code data} through {@code start} (a stub's {@code putPayload}) and returns its name.
   *
   * @throws IllegalArgumentException if it is over {@link #MAX_BYTES}
   */
  public static String upload(
      Function<StreamObserver<PayloadRef>, StreamObserver<PayloadChunk>> start, byte[] data)
      throws IOException {
    return upload(start, com.google.protobuf.UnsafeByteOperations.unsafeWrap(data));
  }

  /** {@link #upload(Function, byte[])} of bytes held in a {@link ByteString}, not copied. */
  public static String upload(
      Function<StreamObserver<PayloadRef>, StreamObserver<PayloadChunk>> start, ByteString data)
      throws IOException {
    if (data.size() > MAX_BYTES) {
      throw new IllegalArgumentException(
          "a payload of "
              + data.size()
              + " bytes is over the "
              + (MAX_BYTES >> 20)
              + " MiB a call may carry");
    }
    CompletableFuture<PayloadRef> done = new CompletableFuture<>();
    StreamObserver<PayloadChunk> up =
        start.apply(
            new StreamObserver<>() {
              @Override
              public void onNext(PayloadRef r) {
                done.complete(r);
              }

              @Override
              public void onError(Throwable t) {
                done.completeExceptionally(t);
              }

              @Override
              public void onCompleted() {
                done.completeExceptionally(new IOException("the upload ended without a name"));
              }
            });
    for (int at = 0; at < data.size() && !done.isDone(); at += CHUNK) {
      up.onNext(
          PayloadChunk.newBuilder()
              .setData(data.substring(at, Math.min(data.size(), at + CHUNK)))
              .build());
    }
    up.onCompleted();
    try {
      return done.get().getName();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted uploading a payload");
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r; // a gRPC status: the caller's to report
      }
      throw new IOException("uploading a payload failed: " + e.getCause(), e.getCause());
    }
  }

  /**
   * Reads a download (a stub's {@code getPayload}) whole, refusing more than {@link #MAX_BYTES}.
   */
  public static byte[] download(Iterator<PayloadChunk> chunks) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    while (chunks.hasNext()) {
      ByteString d = chunks.next().getData();
      if (out.size() + (long) d.size() > MAX_BYTES) {
        throw new IOException("a payload came over " + (MAX_BYTES >> 20) + " MiB");
      }
      d.writeTo(out);
    }
    return out.toByteArray();
  }
}
