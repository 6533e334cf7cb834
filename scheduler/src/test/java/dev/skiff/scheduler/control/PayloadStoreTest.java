package dev.skiff.scheduler.control;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.skiff.scheduler.Payloads;
import dev.skiff.scheduler.proto.PayloadChunk;
import dev.skiff.scheduler.proto.PayloadRef;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PayloadStoreTest {
  @TempDir Path tmp;

  /** What a stream observer heard. */
  static final class Heard<T> implements StreamObserver<T> {
    final List<T> values = new ArrayList<>();
    Throwable error;
    boolean completed;

    @Override
    public void onNext(T v) {
      values.add(v);
    }

    @Override
    public void onError(Throwable t) {
      error = t;
    }

    @Override
    public void onCompleted() {
      completed = true;
    }
  }

  private static PayloadChunk chunk(byte[] b) {
    return PayloadChunk.newBuilder().setData(ByteString.copyFrom(b)).build();
  }

  @Test
  void anUploadIsNamedByItsDigestAndReadBackInChunks() throws Exception {
    PayloadStore store = PayloadStore.inDirectory(tmp.resolve("p"));
    byte[] data = new byte[(3 << 20) + 5];
    new java.util.Random(1).nextBytes(data);
    Heard<PayloadRef> ref = new Heard<>();
    StreamObserver<PayloadChunk> up = store.put(ref);
    up.onNext(chunk(java.util.Arrays.copyOfRange(data, 0, 1 << 20)));
    up.onNext(chunk(java.util.Arrays.copyOfRange(data, 1 << 20, data.length)));
    up.onCompleted();
    assertTrue(ref.completed);
    String name = ref.values.get(0).getName();
    assertEquals(
        "sha256:"
            + java.util.HexFormat.of()
                .formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(data)),
        name);
    assertEquals(data.length, ref.values.get(0).getSize());
    assertTrue(store.exists(name));
    Heard<PayloadChunk> down = new Heard<>();
    store.get(PayloadRef.newBuilder().setName(name).build(), down);
    assertTrue(down.completed);
    assertEquals(4, down.values.size(), "1 MiB chunks");
    ByteArrayOutputStream back = new ByteArrayOutputStream();
    for (PayloadChunk c : down.values) {
      c.getData().writeTo(back);
    }
    assertArrayEquals(data, back.toByteArray());
    try (var files = Files.list(tmp.resolve("p"))) {
      assertEquals(1, files.count(), "no upload left behind");
    }
  }

  @Test
  void namesThatAreNotDigestsAreNeverFilesAndMissingPayloadsAreNotFound() throws Exception {
    PayloadStore store = PayloadStore.inDirectory(tmp.resolve("p"));
    Files.writeString(tmp.resolve("secret"), "host file");
    for (String bad : List.of("../secret", "sha256:../../secret", "", "sha256:" + "A".repeat(64))) {
      assertFalse(store.exists(bad), bad);
    }
    Heard<PayloadChunk> down = new Heard<>();
    store.get(PayloadRef.newBuilder().setName("sha256:" + "0".repeat(64)).build(), down);
    assertEquals(
        io.grpc.Status.Code.NOT_FOUND, ((StatusRuntimeException) down.error).getStatus().getCode());
    assertTrue(down.values.isEmpty());
  }

  @Test
  void anUploadOverTheLimitIsRefusedAndLeavesNothing() throws Exception {
    PayloadStore store = PayloadStore.inDirectory(tmp.resolve("p"));
    Heard<PayloadRef> ref = new Heard<>();
    StreamObserver<PayloadChunk> up = store.put(ref);
    byte[] mib = new byte[Payloads.CHUNK];
    for (long sent = 0; sent <= Payloads.MAX_BYTES; sent += mib.length) {
      up.onNext(chunk(mib));
    }
    up.onCompleted();
    assertEquals(
        io.grpc.Status.Code.RESOURCE_EXHAUSTED,
        ((StatusRuntimeException) ref.error).getStatus().getCode());
    assertTrue(ref.values.isEmpty());
    try (var files = Files.list(tmp.resolve("p"))) {
      assertEquals(0, files.count());
    }
    // an upload the client abandons leaves nothing either
    StreamObserver<PayloadChunk> gone = store.put(new Heard<>());
    gone.onNext(chunk(mib));
    gone.onError(new RuntimeException("client went away"));
    try (var files = Files.list(tmp.resolve("p"))) {
      assertEquals(0, files.count());
    }
  }

  @Test
  void payloadsStoredMoreThanADayAgoAreSwept() throws Exception {
    PayloadStore store = PayloadStore.inDirectory(tmp.resolve("p"));
    List<String> names = new ArrayList<>();
    for (String s : List.of("old", "new")) {
      Heard<PayloadRef> ref = new Heard<>();
      StreamObserver<PayloadChunk> up = store.put(ref);
      up.onNext(chunk(s.getBytes()));
      up.onCompleted();
      names.add(ref.values.get(0).getName());
    }
    Path old = tmp.resolve("p").resolve(names.get(0).substring("sha256:".length()));
    Files.setLastModifiedTime(
        old, FileTime.from(Instant.now().minus(PayloadStore.KEEP).minus(Duration.ofMinutes(1))));
    assertEquals(1, store.sweep(Instant.now()));
    assertFalse(store.exists(names.get(0)));
    assertTrue(store.exists(names.get(1)));
  }
}
