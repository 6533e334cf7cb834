package dev.skiff.scheduler.state;

import static java.nio.charset.StandardCharsets.UTF_8;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.skiff.scheduler.proto.CallRecord;
import dev.skiff.scheduler.proto.Function;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.Status;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import org.lmdbjava.Cursor;
import org.lmdbjava.CursorIterable;
import org.lmdbjava.Dbi;
import org.lmdbjava.DbiFlags;
import org.lmdbjava.Env;
import org.lmdbjava.KeyRange;
import org.lmdbjava.Txn;

/**
 * The embedded {@link ControlState}: one LMDB environment in a directory (no server to run). Every
 * write is one transaction, synced to disk when it commits, so an accepted input survives a crash
 * of the scheduler (kill -9) or of the host.
 *
 * <pre>
 * functions   id NUL version(8)       -> Function
 * calls       call id                 -> CallRecord
 * unfinished  call id                 -> ""        (pending or running)
 * order       seq(8) call id          -> ""        (acceptance order; the most recent calls)
 * blobs       digest                  -> bytes     (code bundles)
 * blobtimes   digest                  -> ms(8)     (when each was last stored or asked for)
 * secrets     name                    -> JSON object of the values
 * </pre>
 *
 * <p>The directory is the owner's alone (0700), since it holds secrets.
 */
public final class LmdbControlState implements ControlState {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Env<ByteBuffer> env;
  private final Dbi<ByteBuffer> functions;
  private final Dbi<ByteBuffer> calls;
  private final Dbi<ByteBuffer> unfinished;
  private final Dbi<ByteBuffer> order;
  private final Dbi<ByteBuffer> blobs;
  private final Dbi<ByteBuffer> blobTimes;
  private final Dbi<ByteBuffer> secrets;

  private LmdbControlState(Env<ByteBuffer> env) {
    this.env = env;
    this.functions = env.openDbi("functions", DbiFlags.MDB_CREATE);
    this.calls = env.openDbi("calls", DbiFlags.MDB_CREATE);
    this.unfinished = env.openDbi("unfinished", DbiFlags.MDB_CREATE);
    this.order = env.openDbi("order", DbiFlags.MDB_CREATE);
    this.blobs = env.openDbi("blobs", DbiFlags.MDB_CREATE);
    this.blobTimes = env.openDbi("blobtimes", DbiFlags.MDB_CREATE);
    this.secrets = env.openDbi("secrets", DbiFlags.MDB_CREATE);
  }

  /** Opens (creating if needed) the state in {@code dir}. */
  public static LmdbControlState open(Path dir) throws IOException {
    Files.createDirectories(dir);
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
    Env<ByteBuffer> env =
        Env.create().setMapSize(64L << 30).setMaxDbs(7).setMaxReaders(512).open(dir.toFile());
    try {
      return new LmdbControlState(env);
    } catch (RuntimeException e) {
      env.close();
      throw e;
    }
  }

  /** A new call id: {@code call-} and 12 random bytes in hex. */
  static String newCallId() {
    byte[] b = new byte[12];
    RANDOM.nextBytes(b);
    return "call-" + HexFormat.of().formatHex(b);
  }

  private static ByteBuffer direct(byte[] b) {
    return ByteBuffer.allocateDirect(Math.max(1, b.length)).put(b).flip();
  }

  private static ByteBuffer functionKey(String id, long version) {
    byte[] name = id.getBytes(UTF_8);
    return ByteBuffer.allocateDirect(name.length + 9)
        .put(name)
        .put((byte) 0)
        .putLong(version)
        .flip();
  }

  private static byte[] bytes(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.duplicate().get(out);
    return out;
  }

  @Override
  public synchronized Function deploy(FunctionSpec spec, long nowMillis) throws IOException {
    String id = spec.getApp() + "/" + spec.getName();
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      long version = latestIn(txn, id).map(f -> f.getVersion() + 1).orElse(1L);
      Function f =
          Function.newBuilder()
              .setId(id)
              .setVersion(version)
              .setSpec(spec)
              .setDeployedAtMs(nowMillis)
              .build();
      functions.put(txn, functionKey(id, version), direct(f.toByteArray()));
      txn.commit();
      return f;
    }
  }

  private Optional<Function> latestIn(Txn<ByteBuffer> txn, String id) throws IOException {
    Function latest = null;
    try (CursorIterable<ByteBuffer> it =
        functions.iterate(
            txn, KeyRange.closed(functionKey(id, 0), functionKey(id, Long.MAX_VALUE)))) {
      for (CursorIterable.KeyVal<ByteBuffer> kv : it) {
        latest = parseFunction(kv.val());
      }
    }
    return Optional.ofNullable(latest);
  }

  private static Function parseFunction(ByteBuffer v) throws IOException {
    try {
      return Function.parseFrom(bytes(v));
    } catch (InvalidProtocolBufferException e) {
      throw new IOException("damaged function record: " + e.getMessage(), e);
    }
  }

  private static CallRecord parseCall(ByteBuffer v) throws IOException {
    try {
      return CallRecord.parseFrom(bytes(v));
    } catch (InvalidProtocolBufferException e) {
      throw new IOException("damaged call record: " + e.getMessage(), e);
    }
  }

  @Override
  public Optional<Function> latest(String id) throws IOException {
    try (Txn<ByteBuffer> txn = env.txnRead()) {
      return latestIn(txn, id);
    }
  }

  @Override
  public Optional<Function> function(String id, long version) throws IOException {
    try (Txn<ByteBuffer> txn = env.txnRead()) {
      ByteBuffer v = functions.get(txn, functionKey(id, version));
      return v == null ? Optional.empty() : Optional.of(parseFunction(v));
    }
  }

  @Override
  public List<Function> functions() throws IOException {
    List<Function> out = new ArrayList<>();
    try (Txn<ByteBuffer> txn = env.txnRead();
        CursorIterable<ByteBuffer> it = functions.iterate(txn)) {
      for (CursorIterable.KeyVal<ByteBuffer> kv : it) {
        Function f = parseFunction(kv.val());
        if (!out.isEmpty() && out.get(out.size() - 1).getId().equals(f.getId())) {
          out.set(out.size() - 1, f); // later versions sort later
        } else {
          out.add(f);
        }
      }
    }
    return out;
  }

  @Override
  public synchronized List<CallRecord> accept(Function function, List<Input> inputs, long nowMillis)
      throws IOException {
    List<CallRecord> ids = new ArrayList<>(inputs.size());
    ByteBuffer empty = ByteBuffer.allocateDirect(1).put((byte) 0).flip();
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      long seq = lastSeq(txn) + 1;
      for (Input in : inputs) {
        String id = newCallId();
        CallRecord r =
            CallRecord.newBuilder()
                .setCallId(id)
                .setFunctionId(function.getId())
                .setVersion(function.getVersion())
                .setInput(in)
                .setStatus(Status.PENDING)
                .setCreatedMs(nowMillis)
                .setUpdatedMs(nowMillis)
                .setSeq(seq)
                .build();
        ByteBuffer key = direct(id.getBytes(UTF_8));
        calls.put(txn, key, direct(r.toByteArray()));
        unfinished.put(txn, key, empty);
        byte[] idBytes = id.getBytes(UTF_8);
        order.put(
            txn,
            ByteBuffer.allocateDirect(8 + idBytes.length).putLong(seq++).put(idBytes).flip(),
            empty);
        ids.add(r);
      }
      txn.commit();
    }
    return ids;
  }

  /** The sequence number of the last call accepted, 0 if none. */
  private long lastSeq(Txn<ByteBuffer> txn) {
    try (Cursor<ByteBuffer> c = order.openCursor(txn)) {
      return c.last() ? c.key().getLong(c.key().position()) : 0;
    }
  }

  @Override
  public Optional<CallRecord> call(String callId) throws IOException {
    try (Txn<ByteBuffer> txn = env.txnRead()) {
      ByteBuffer v = calls.get(txn, direct(callId.getBytes(UTF_8)));
      return v == null ? Optional.empty() : Optional.of(parseCall(v));
    }
  }

  @Override
  public synchronized void update(List<CallRecord> records) throws IOException {
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      for (CallRecord record : records) {
        ByteBuffer key = direct(record.getCallId().getBytes(UTF_8));
        if (calls.get(txn, key) == null) {
          throw new IOException("no call " + record.getCallId());
        }
        calls.put(txn, key, direct(record.toByteArray()));
        if (ControlState.finished(record.getStatus())) {
          unfinished.delete(txn, key);
        } else {
          unfinished.put(txn, key, ByteBuffer.allocateDirect(1).put((byte) 0).flip());
        }
      }
      txn.commit();
    }
  }

  @Override
  public synchronized void putBlob(String digest, byte[] bytes, long nowMillis) throws IOException {
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      ByteBuffer key = direct(digest.getBytes(UTF_8));
      if (blobs.get(txn, key) == null) {
        blobs.put(txn, key, direct(bytes));
      }
      blobTimes.put(txn, key, ByteBuffer.allocateDirect(8).putLong(nowMillis).flip());
      txn.commit();
    }
  }

  @Override
  public synchronized void touchBlobs(java.util.Collection<String> digests, long nowMillis)
      throws IOException {
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      for (String d : digests) {
        ByteBuffer key = direct(d.getBytes(UTF_8));
        if (blobs.get(txn, key) != null) {
          blobTimes.put(txn, key, ByteBuffer.allocateDirect(8).putLong(nowMillis).flip());
        }
      }
      txn.commit();
    }
  }

  @Override
  public List<String> blobsStoredBefore(long beforeMillis) throws IOException {
    List<String> out = new ArrayList<>();
    try (Txn<ByteBuffer> txn = env.txnRead();
        org.lmdbjava.Cursor<ByteBuffer> c = blobs.openCursor(txn)) {
      for (boolean ok = c.first(); ok; ok = c.next()) {
        ByteBuffer k = c.key();
        ByteBuffer t = blobTimes.get(txn, k.duplicate());
        // a blob stored before its time was kept counts as old
        if (t == null || t.getLong(0) < beforeMillis) {
          out.add(UTF_8.decode(k.duplicate()).toString());
        }
      }
    }
    return out;
  }

  @Override
  public synchronized int removeBlobs(java.util.Collection<String> digests, long beforeMillis)
      throws IOException {
    int removed = 0;
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      for (String d : digests) {
        ByteBuffer t = blobTimes.get(txn, direct(d.getBytes(UTF_8)));
        if (t != null && t.getLong(0) >= beforeMillis) {
          continue; // stored or asked for since it was listed
        }
        if (blobs.delete(txn, direct(d.getBytes(UTF_8)))) {
          removed++;
        }
        blobTimes.delete(txn, direct(d.getBytes(UTF_8)));
      }
      txn.commit();
    }
    return removed;
  }

  @Override
  public boolean hasBlob(String digest) throws IOException {
    try (Txn<ByteBuffer> txn = env.txnRead()) {
      return blobs.get(txn, direct(digest.getBytes(UTF_8))) != null;
    }
  }

  @Override
  public Optional<byte[]> blob(String digest) throws IOException {
    try (Txn<ByteBuffer> txn = env.txnRead()) {
      ByteBuffer v = blobs.get(txn, direct(digest.getBytes(UTF_8)));
      return v == null ? Optional.empty() : Optional.of(bytes(v));
    }
  }

  @Override
  public synchronized void putSecret(String name, Map<String, String> values) throws IOException {
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      secrets.put(
          txn, direct(name.getBytes(UTF_8)), direct(JSON.writeValueAsBytes(new TreeMap<>(values))));
      txn.commit();
    }
  }

  @Override
  public Optional<Map<String, String>> secret(String name) throws IOException {
    try (Txn<ByteBuffer> txn = env.txnRead()) {
      ByteBuffer v = secrets.get(txn, direct(name.getBytes(UTF_8)));
      return v == null
          ? Optional.empty()
          : Optional.of(JSON.readValue(bytes(v), new TypeReference<TreeMap<String, String>>() {}));
    }
  }

  @Override
  public List<String> secrets() throws IOException {
    List<String> out = new ArrayList<>();
    try (Txn<ByteBuffer> txn = env.txnRead();
        CursorIterable<ByteBuffer> it = secrets.iterate(txn)) {
      for (CursorIterable.KeyVal<ByteBuffer> kv : it) {
        out.add(new String(bytes(kv.key()), UTF_8));
      }
    }
    return out;
  }

  @Override
  public List<CallRecord> unfinished() throws IOException {
    List<CallRecord> out = new ArrayList<>();
    try (Txn<ByteBuffer> txn = env.txnRead();
        CursorIterable<ByteBuffer> it = unfinished.iterate(txn)) {
      for (CursorIterable.KeyVal<ByteBuffer> kv : it) {
        ByteBuffer v = calls.get(txn, kv.key());
        if (v != null) {
          out.add(parseCall(v));
        }
      }
    }
    out.sort((a, b) -> Long.compare(a.getSeq(), b.getSeq()));
    return out;
  }

  @Override
  public List<CallRecord> recent(int limit) throws IOException {
    List<CallRecord> out = new ArrayList<>();
    try (Txn<ByteBuffer> txn = env.txnRead();
        Cursor<ByteBuffer> c = order.openCursor(txn)) {
      for (boolean ok = c.last(); ok && out.size() < limit; ok = c.prev()) {
        ByteBuffer k = c.key().duplicate();
        k.position(k.position() + 8);
        ByteBuffer v = calls.get(txn, direct(bytes(k)));
        if (v != null) {
          out.add(parseCall(v));
        }
      }
    }
    return out;
  }

  @Override
  public synchronized int forgetFinished(long beforeMillis, int limit) throws IOException {
    int forgotten = 0;
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      List<ByteBuffer> orderKeys = new ArrayList<>();
      List<ByteBuffer> callKeys = new ArrayList<>();
      try (Cursor<ByteBuffer> c = order.openCursor(txn)) {
        for (boolean ok = c.first(); ok && orderKeys.size() < limit; ok = c.next()) {
          ByteBuffer k = c.key().duplicate();
          byte[] okey = bytes(k.duplicate());
          k.position(k.position() + 8);
          ByteBuffer id = direct(bytes(k));
          ByteBuffer v = calls.get(txn, id);
          if (v == null) {
            orderKeys.add(direct(okey)); // an entry whose call is gone
            continue;
          }
          CallRecord r = parseCall(v);
          if (r.getCreatedMs() >= beforeMillis) {
            break; // in order of acceptance: none later can have finished before
          }
          if (ControlState.finished(r.getStatus()) && r.getUpdatedMs() < beforeMillis) {
            orderKeys.add(direct(okey));
            callKeys.add(id);
          }
        }
      }
      for (ByteBuffer k : orderKeys) {
        order.delete(txn, k);
      }
      for (ByteBuffer k : callKeys) {
        calls.delete(txn, k);
        forgotten++;
      }
      txn.commit();
    }
    return forgotten;
  }

  @Override
  public void close() {
    env.close();
  }
}
