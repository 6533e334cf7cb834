package dev.skiff.scheduler.control;

import com.google.protobuf.ByteString;
import dev.skiff.scheduler.Payloads;
import dev.skiff.scheduler.proto.PayloadChunk;
import dev.skiff.scheduler.proto.PayloadRef;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Payloads over 2 MiB (inputs and outputs of calls), kept as files named by their content's SHA-256
 * in a directory of the scheduler's, and removed a day after they were last stored. They come and
 * go in chunks of up to 1 MiB on streams of their own, never inside the messages that carry calls.
 * Uploads are written to a temporary file, counted and hashed on the way, and appear under their
 * name only when whole.
 */
public final class PayloadStore {
  private static final Logger LOG = LoggerFactory.getLogger(PayloadStore.class);
  private static final Pattern NAME = Pattern.compile("sha256:[0-9a-f]{64}");

  /** How long a payload is kept after it was last stored. */
  public static final Duration KEEP = Duration.ofDays(1);

  private final Path dir;

  public PayloadStore(Path dir) throws IOException {
    this.dir = Files.createDirectories(dir);
  }

  public Path dir() {
    return dir;
  }

  /** Whether a payload of this name is here; false for a malformed name. */
  public boolean exists(String name) {
    return NAME.matcher(name).matches() && Files.isRegularFile(file(name));
  }

  private Path file(String name) {
    return dir.resolve(name.substring("sha256:".length()));
  }

  /** The server side of an upload: chunks in, the payload's name out once it is whole. */
  public StreamObserver<PayloadChunk> put(StreamObserver<PayloadRef> out) {
    return new StreamObserver<>() {
      private Path tmp;
      private OutputStream file;
      private MessageDigest sha;
      private long size;
      private boolean failed;

      @Override
      public void onNext(PayloadChunk c) {
        if (failed) {
          return;
        }
        try {
          if (file == null) {
            tmp = Files.createTempFile(dir, ".upload-", "");
            file = Files.newOutputStream(tmp);
            sha = MessageDigest.getInstance("SHA-256");
          }
          size += c.getData().size();
          if (size > Payloads.MAX_BYTES) {
            fail(
                Status.RESOURCE_EXHAUSTED.withDescription(
                    "a payload over " + (Payloads.MAX_BYTES >> 20) + " MiB is refused"));
            return;
          }
          for (ByteBuffer b : c.getData().asReadOnlyByteBufferList()) {
            sha.update(b);
          }
          c.getData().writeTo(file);
        } catch (IOException | NoSuchAlgorithmException e) {
          fail(Status.INTERNAL.withDescription("cannot store the payload: " + e.getMessage()));
        }
      }

      @Override
      public void onError(Throwable t) {
        failed = true;
        discard();
      }

      @Override
      public void onCompleted() {
        if (failed) {
          return;
        }
        try {
          if (file == null) { // an empty payload
            tmp = Files.createTempFile(dir, ".upload-", "");
            sha = MessageDigest.getInstance("SHA-256");
          } else {
            file.close();
          }
          String name = "sha256:" + HexFormat.of().formatHex(sha.digest());
          Path to = file(name);
          Files.move(tmp, to, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
          Files.setLastModifiedTime(to, java.nio.file.attribute.FileTime.from(Instant.now()));
          out.onNext(PayloadRef.newBuilder().setName(name).setSize(size).build());
          out.onCompleted();
        } catch (IOException | NoSuchAlgorithmException e) {
          fail(Status.INTERNAL.withDescription("cannot store the payload: " + e.getMessage()));
        }
      }

      private void fail(Status s) {
        failed = true;
        discard();
        out.onError(s.asRuntimeException());
      }

      private void discard() {
        try {
          if (file != null) {
            file.close();
          }
          if (tmp != null) {
            Files.deleteIfExists(tmp);
          }
        } catch (IOException e) {
          LOG.debug("cannot remove upload {}: {}", tmp, e.toString());
        }
      }
    };
  }

  /** The server side of a download: the payload in chunks of up to 1 MiB. */
  public void get(PayloadRef ref, StreamObserver<PayloadChunk> out) {
    if (!exists(ref.getName())) {
      out.onError(
          Status.NOT_FOUND
              .withDescription(
                  "no payload "
                      + ref.getName()
                      + " (payloads are kept for "
                      + KEEP.toHours()
                      + " h after they were stored)")
              .asRuntimeException());
      return;
    }
    FileChannel ch;
    try {
      ch = FileChannel.open(file(ref.getName()), StandardOpenOption.READ);
    } catch (IOException e) {
      out.onError(cannotRead(ref, e));
      return;
    }
    if (!(out instanceof ServerCallStreamObserver<PayloadChunk> s)) {
      try (ch) {
        while (send(ch, out)) {
          // on
        }
      } catch (IOException e) {
        out.onError(cannotRead(ref, e));
      }
      return;
    }
    // As fast as the client takes it: a chunk more each time the stream is ready, so that a
    // slow or stalled reader holds no more than gRPC's window of the payload in memory.
    AtomicBoolean done = new AtomicBoolean();
    Runnable pump =
        () -> {
          synchronized (ch) {
            try {
              while (!done.get() && s.isReady()) {
                if (!send(ch, s)) {
                  done.set(true);
                  ch.close();
                }
              }
            } catch (IOException e) {
              done.set(true);
              closeQuietly(ch);
              s.onError(cannotRead(ref, e));
            }
          }
        };
    s.setOnCancelHandler(
        () -> {
          done.set(true);
          closeQuietly(ch);
        });
    s.setOnReadyHandler(pump);
  }

  /** Sends the next chunk, or completes the stream at the end; false once completed. */
  private static boolean send(FileChannel ch, StreamObserver<PayloadChunk> out) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(Payloads.CHUNK);
    if (ch.read(buf) <= 0) {
      out.onCompleted();
      return false;
    }
    out.onNext(PayloadChunk.newBuilder().setData(ByteString.copyFrom(buf.flip())).build());
    return true;
  }

  private static io.grpc.StatusRuntimeException cannotRead(PayloadRef ref, IOException e) {
    return Status.INTERNAL
        .withDescription("cannot read payload " + ref.getName() + ": " + e.getMessage())
        .asRuntimeException();
  }

  private static void closeQuietly(FileChannel ch) {
    try {
      ch.close();
    } catch (IOException ignored) {
      // a read-only file
    }
  }

  /** Removes payloads stored more than {@link #KEEP} before {@code now}; returns how many. */
  public int sweep(Instant now) {
    int removed = 0;
    Instant before = now.minus(KEEP);
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
      for (Path p : ds) {
        try {
          if (Files.getLastModifiedTime(p).toInstant().isBefore(before)) {
            Files.deleteIfExists(p);
            removed++;
          }
        } catch (IOException e) {
          LOG.debug("cannot remove payload {}: {}", p, e.toString());
        }
      }
    } catch (IOException e) {
      LOG.warn("cannot list payloads in {}: {}", dir, e.toString());
    }
    return removed;
  }
}
