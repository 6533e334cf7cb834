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
 * Payloads over 2 MiB (inputs and outputs of calls), named by their content's SHA-256 and removed a
 * day after they were last stored. They come and go in chunks of up to 1 MiB on streams of their
 * own, never inside the messages that carry calls. Uploads are written to a temporary file, counted
 * and hashed on the way, and handed to the {@link Backing} only when whole: files in a directory of
 * the scheduler's ({@link #inDirectory}), or the PostgreSQL database of its state ({@link
 * PostgresPayloads}), where a standby scheduler that takes over finds them.
 */
public final class PayloadStore {
  private static final Logger LOG = LoggerFactory.getLogger(PayloadStore.class);
  private static final Pattern NAME = Pattern.compile("sha256:[0-9a-f]{64}");

  /** How long a payload is kept after it was last stored. */
  public static final Duration KEEP = Duration.ofDays(1);

  /** Where whole payloads are kept. */
  public interface Backing extends AutoCloseable {
    /** Whether a payload of this (well-formed) name is kept. */
    boolean exists(String name) throws IOException;

    /**
     * Keeps the bytes of {@code whole}, a file of the store's, as payload {@code name} (again, if
     * it is kept: its time starts anew); the file is the backing's to move or delete.
     */
    void keep(String name, Path whole, long size) throws IOException;

    /** The payload's bytes in chunks of up to {@link Payloads#CHUNK}. */
    Chunks open(String name) throws IOException;

    /** Removes payloads last stored before {@code before}; returns how many. */
    int sweep(Instant before) throws IOException;

    @Override
    void close();
  }

  /** A payload's bytes, a chunk at a time. */
  public interface Chunks extends java.io.Closeable {
    /** The next chunk, or null at the end. */
    ByteString next() throws IOException;
  }

  private final Path scratch;
  private final Backing backing;

  /** Payloads kept as files in {@code dir}. */
  public static PayloadStore inDirectory(Path dir) throws IOException {
    Path d = Files.createDirectories(dir);
    return new PayloadStore(d, new DirectoryBacking(d));
  }

  /** Payloads kept by {@code backing}, uploads written in {@code scratch} until whole. */
  public PayloadStore(Path scratch, Backing backing) throws IOException {
    this.scratch = Files.createDirectories(scratch);
    this.backing = backing;
  }

  /** Whether a payload of this name is here; false for a malformed name. */
  public boolean exists(String name) {
    try {
      return NAME.matcher(name).matches() && backing.exists(name);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("cannot look up payload " + name, e);
    }
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
            tmp = Files.createTempFile(scratch, ".upload-", "");
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
            tmp = Files.createTempFile(scratch, ".upload-", "");
            sha = MessageDigest.getInstance("SHA-256");
          } else {
            file.close();
          }
          String name = "sha256:" + HexFormat.of().formatHex(sha.digest());
          backing.keep(name, tmp, size);
          tmp = null;
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
    Chunks ch;
    try {
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
      ch = backing.open(ref.getName());
    } catch (IOException | java.io.UncheckedIOException e) {
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
  private static boolean send(Chunks ch, StreamObserver<PayloadChunk> out) throws IOException {
    ByteString b = ch.next();
    if (b == null) {
      out.onCompleted();
      return false;
    }
    out.onNext(PayloadChunk.newBuilder().setData(b).build());
    return true;
  }

  private static io.grpc.StatusRuntimeException cannotRead(PayloadRef ref, Exception e) {
    return Status.INTERNAL
        .withDescription("cannot read payload " + ref.getName() + ": " + e.getMessage())
        .asRuntimeException();
  }

  private static void closeQuietly(Chunks ch) {
    try {
      ch.close();
    } catch (IOException ignored) {
      // nothing held that matters
    }
  }

  /** Removes payloads stored more than {@link #KEEP} before {@code now}; returns how many. */
  public int sweep(Instant now) {
    try {
      return backing.sweep(now.minus(KEEP));
    } catch (IOException e) {
      LOG.warn("cannot remove old payloads: {}", e.getMessage());
      return 0;
    }
  }

  public void close() {
    backing.close();
  }

  /** Payloads as files named by their digest's hex in one directory. */
  private record DirectoryBacking(Path dir) implements Backing {
    private Path file(String name) {
      return dir.resolve(name.substring("sha256:".length()));
    }

    @Override
    public boolean exists(String name) {
      return Files.isRegularFile(file(name));
    }

    @Override
    public void keep(String name, Path whole, long size) throws IOException {
      Path to = file(name);
      Files.move(whole, to, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      Files.setLastModifiedTime(to, java.nio.file.attribute.FileTime.from(Instant.now()));
    }

    @Override
    public Chunks open(String name) throws IOException {
      FileChannel ch = FileChannel.open(file(name), StandardOpenOption.READ);
      return new Chunks() {
        @Override
        public ByteString next() throws IOException {
          ByteBuffer buf = ByteBuffer.allocate(Payloads.CHUNK);
          while (buf.hasRemaining() && ch.read(buf) > 0) {
            // fill the chunk
          }
          return buf.position() == 0 ? null : ByteString.copyFrom(buf.flip());
        }

        @Override
        public void close() throws IOException {
          ch.close();
        }
      };
    }

    @Override
    public int sweep(Instant before) throws IOException {
      int removed = 0;
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
      }
      return removed;
    }

    @Override
    public void close() {
      // files need no closing
    }
  }
}
