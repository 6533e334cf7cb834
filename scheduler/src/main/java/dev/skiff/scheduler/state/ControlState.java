package dev.skiff.scheduler.state;

import dev.skiff.scheduler.proto.CallRecord;
import dev.skiff.scheduler.proto.Function;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.Result;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What the scheduler must not lose: deployed functions (every version) and calls (input, status,
 * result, attempts). An input is accepted only once {@link #accept} has returned: recorded durably.
 * One contract, run by one test suite against every implementation: an embedded store (no server)
 * and PostgreSQL.
 *
 * <p>Implementations are thread safe.
 */
public interface ControlState extends AutoCloseable {

  /** Records a new version of a function (version 1 for a new one) and returns it. */
  Function deploy(FunctionSpec spec, long nowMillis) throws IOException;

  /** The latest version of function {@code id} (app/name), or empty. */
  Optional<Function> latest(String id) throws IOException;

  /** A given version, or empty. */
  Optional<Function> function(String id, long version) throws IOException;

  /** The latest version of every function, by id. */
  List<Function> functions() throws IOException;

  /**
   * Records inputs of a function version as pending calls, all or none, durably; returns their
   * records in order.
   */
  List<CallRecord> accept(Function function, List<Input> inputs, long nowMillis) throws IOException;

  /** A call, or empty. */
  Optional<CallRecord> call(String callId) throws IOException;

  /**
   * Replaces calls' records (status, attempts, result), all in one durable write; each must exist.
   */
  void update(List<CallRecord> records) throws IOException;

  /** Replaces one call's record. */
  default void update(CallRecord record) throws IOException {
    update(List.of(record));
  }

  /** Calls that are pending or running: what a scheduler restarting must finish. */
  List<CallRecord> unfinished() throws IOException;

  /** The most recent calls, newest first. */
  List<CallRecord> recent(int limit) throws IOException;

  /**
   * Forgets calls that finished before {@code beforeMillis} (their record's last update), at most
   * {@code limit} of them, oldest first; unfinished calls are never forgotten. Returns how many.
   */
  int forgetFinished(long beforeMillis, int limit) throws IOException;

  /**
   * Stores a blob (a function's code bundle) under its digest, stored at {@code nowMillis}; storing
   * it again keeps the bytes and takes the new time.
   */
  void putBlob(String digest, byte[] bytes, long nowMillis) throws IOException;

  /** {@link #putBlob(String, byte[], long)} now. */
  default void putBlob(String digest, byte[] bytes) throws IOException {
    putBlob(digest, bytes, System.currentTimeMillis());
  }

  /**
   * Marks the stored ones of these blobs as stored at {@code nowMillis} (a client relies on them).
   */
  void touchBlobs(java.util.Collection<String> digests, long nowMillis) throws IOException;

  /** The digests of blobs last stored (or touched) before {@code beforeMillis}. */
  List<String> blobsStoredBefore(long beforeMillis) throws IOException;

  /**
   * Removes those of these blobs still last stored (or touched) before {@code beforeMillis}: one
   * stored or asked for since it was listed stays. Returns how many were removed.
   */
  int removeBlobs(java.util.Collection<String> digests, long beforeMillis) throws IOException;

  /** A blob by digest, or empty. */
  Optional<byte[]> blob(String digest) throws IOException;

  /** Whether a blob is stored, without reading it. */
  boolean hasBlob(String digest) throws IOException;

  /**
   * Creates or replaces a secret: named values that reach the containers of functions naming it.
   */
  void putSecret(String name, Map<String, String> values) throws IOException;

  /** A secret's values, or empty. */
  Optional<Map<String, String>> secret(String name) throws IOException;

  /** The names of every secret, sorted. */
  List<String> secrets() throws IOException;

  /** Whether a status is final (the call's result will not change). */
  static boolean finished(dev.skiff.scheduler.proto.Status s) {
    return switch (s) {
      case SUCCESS, HANDLER_ERROR, TIMEOUT, OUT_OF_MEMORY, CANCELLED, INTERNAL -> true;
      default -> false;
    };
  }

  /** A finished call's result record. */
  static CallRecord finish(CallRecord r, Result result, long nowMillis) {
    return r.toBuilder()
        .setStatus(result.getStatus())
        .setResult(result)
        .setUpdatedMs(nowMillis)
        .build();
  }

  @Override
  void close() throws IOException;
}
