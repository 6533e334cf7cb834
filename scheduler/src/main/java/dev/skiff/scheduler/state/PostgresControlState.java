package dev.skiff.scheduler.state;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.skiff.scheduler.proto.CallRecord;
import dev.skiff.scheduler.proto.Function;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.Status;
import java.io.IOException;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The {@link ControlState} in PostgreSQL, for an installation that outgrows one host: the state
 * lives apart from any scheduler, so a standby scheduler on another host can take over from one
 * that died ({@link #awaitLeadership}). Each write is one transaction, committed (and so durable)
 * before it returns.
 *
 * <pre>
 * skiff_functions (id, version) -> spec (protobuf)
 * skiff_calls     call_id       -> record (protobuf), seq (acceptance order), finished
 * skiff_blobs     digest        -> bytes (code bundles), stored_ms (last stored or asked for)
 * skiff_secrets   name          -> values (JSON)
 * </pre>
 *
 * <p>One connection, used by one thread at a time; a broken connection is opened again on the next
 * call.
 */
public final class PostgresControlState implements ControlState {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long LEADER_LOCK = 0x736b696666L; // "skiff"

  private static final String SCHEMA =
      """
      CREATE TABLE IF NOT EXISTS skiff_functions (
        id text NOT NULL, version bigint NOT NULL, body bytea NOT NULL, PRIMARY KEY (id, version));
      CREATE SEQUENCE IF NOT EXISTS skiff_call_seq;
      CREATE TABLE IF NOT EXISTS skiff_calls (
        call_id text PRIMARY KEY, seq bigint NOT NULL, finished boolean NOT NULL, body bytea NOT NULL);
      CREATE INDEX IF NOT EXISTS skiff_calls_seq ON skiff_calls (seq);
      CREATE INDEX IF NOT EXISTS skiff_calls_unfinished ON skiff_calls (seq) WHERE NOT finished;
      ALTER TABLE skiff_calls ADD COLUMN IF NOT EXISTS finished_ms bigint;
      CREATE INDEX IF NOT EXISTS skiff_calls_finished_ms ON skiff_calls (finished_ms) WHERE finished;
      CREATE TABLE IF NOT EXISTS skiff_blobs (digest text PRIMARY KEY, body bytea NOT NULL);
      ALTER TABLE skiff_blobs ADD COLUMN IF NOT EXISTS stored_ms bigint NOT NULL DEFAULT 0;
      CREATE TABLE IF NOT EXISTS skiff_secrets (name text PRIMARY KEY, body text NOT NULL);
      """;

  private final PostgresConnection db;
  private final String url;
  private Connection leader;

  private PostgresControlState(String url) {
    this.db = new PostgresConnection(url);
    this.url = db.url();
  }

  /** The database's URL, for the scheduler's other tables (logs, payloads). */
  public String url() {
    return url;
  }

  /**
   * Opens the state in the database at {@code url} ({@code
   * postgresql://[user[:password]@]host[:port]/db}, or a {@code jdbc:postgresql:} URL), making its
   * tables if they are not there.
   */
  public static PostgresControlState open(String url) throws IOException {
    PostgresControlState s = new PostgresControlState(url);
    s.db.inTransaction(
        c -> {
          try (Statement st = c.createStatement()) {
            // one scheduler at a time makes the schema
            st.execute("SELECT pg_advisory_xact_lock(" + (LEADER_LOCK + 1) + ")");
            st.execute(SCHEMA);
          }
          return null;
        });
    return s;
  }

  /**
   * Waits until this process is the scheduler that serves (a session-level advisory lock, held on a
   * connection of its own until {@link #close}): a standby started next to a running scheduler
   * waits here and takes over when the other's connection ends (it exited or died).
   */
  public void awaitLeadership() throws IOException {
    lead(true);
  }

  /** Takes the lead if no other scheduler holds it; false (at once) if one does. */
  public boolean tryLeadership() throws IOException {
    return lead(false);
  }

  private boolean lead(boolean wait) throws IOException {
    try {
      Connection c = DriverManager.getConnection(url);
      boolean got;
      try (Statement st = c.createStatement();
          ResultSet rs =
              st.executeQuery(
                  wait
                      ? "SELECT pg_advisory_lock(" + LEADER_LOCK + ") IS NOT NULL"
                      : "SELECT pg_try_advisory_lock(" + LEADER_LOCK + ")")) {
        rs.next();
        got = rs.getBoolean(1);
      }
      if (!got) {
        c.close();
        return false;
      }
      synchronized (this) {
        leader = c;
      }
      return true;
    } catch (SQLException e) {
      throw new IOException("PostgreSQL: " + e.getMessage(), e);
    }
  }

  private static Function parseFunction(byte[] b) throws IOException {
    try {
      return Function.parseFrom(b);
    } catch (InvalidProtocolBufferException e) {
      throw new IOException("damaged function record: " + e.getMessage(), e);
    }
  }

  private static CallRecord parseCall(byte[] b) throws IOException {
    try {
      return CallRecord.parseFrom(b);
    } catch (InvalidProtocolBufferException e) {
      throw new IOException("damaged call record: " + e.getMessage(), e);
    }
  }

  @Override
  public Function deploy(FunctionSpec spec, long nowMillis) throws IOException {
    String id = spec.getApp() + "/" + spec.getName();
    return db.inTransaction(
        c -> {
          try (PreparedStatement lock =
              c.prepareStatement("SELECT pg_advisory_xact_lock(hashtext(?))")) {
            lock.setString(1, id);
            lock.execute();
          }
          long version = 1;
          try (PreparedStatement q =
              c.prepareStatement(
                  "SELECT coalesce(max(version), 0) FROM skiff_functions WHERE id = ?")) {
            q.setString(1, id);
            try (ResultSet rs = q.executeQuery()) {
              rs.next();
              version = rs.getLong(1) + 1;
            }
          }
          Function f =
              Function.newBuilder()
                  .setId(id)
                  .setVersion(version)
                  .setSpec(spec)
                  .setDeployedAtMs(nowMillis)
                  .build();
          try (PreparedStatement ins =
              c.prepareStatement(
                  "INSERT INTO skiff_functions (id, version, body) VALUES (?, ?, ?)")) {
            ins.setString(1, id);
            ins.setLong(2, version);
            ins.setBytes(3, f.toByteArray());
            ins.executeUpdate();
          }
          return f;
        });
  }

  @Override
  public Optional<Function> latest(String id) throws IOException {
    return db.inTransaction(
        c -> {
          try (PreparedStatement q =
              c.prepareStatement(
                  "SELECT body FROM skiff_functions WHERE id = ? ORDER BY version DESC LIMIT 1")) {
            q.setString(1, id);
            try (ResultSet rs = q.executeQuery()) {
              return rs.next() ? Optional.of(parseFunction(rs.getBytes(1))) : Optional.empty();
            }
          }
        });
  }

  @Override
  public Optional<Function> function(String id, long version) throws IOException {
    return db.inTransaction(
        c -> {
          try (PreparedStatement q =
              c.prepareStatement("SELECT body FROM skiff_functions WHERE id = ? AND version = ?")) {
            q.setString(1, id);
            q.setLong(2, version);
            try (ResultSet rs = q.executeQuery()) {
              return rs.next() ? Optional.of(parseFunction(rs.getBytes(1))) : Optional.empty();
            }
          }
        });
  }

  @Override
  public List<Function> functions() throws IOException {
    return db.inTransaction(
        c -> {
          List<Function> out = new ArrayList<>();
          try (Statement st = c.createStatement();
              ResultSet rs =
                  st.executeQuery(
                      "SELECT DISTINCT ON (id) body FROM skiff_functions ORDER BY id, version DESC")) {
            while (rs.next()) {
              out.add(parseFunction(rs.getBytes(1)));
            }
          }
          return out;
        });
  }

  @Override
  public List<CallRecord> accept(Function function, List<Input> inputs, long nowMillis)
      throws IOException {
    if (inputs.isEmpty()) {
      return List.of();
    }
    return db.inTransaction(
        c -> {
          List<Long> seqs = new ArrayList<>(inputs.size());
          try (PreparedStatement q =
              c.prepareStatement("SELECT nextval('skiff_call_seq') FROM generate_series(1, ?)")) {
            q.setInt(1, inputs.size());
            try (ResultSet rs = q.executeQuery()) {
              while (rs.next()) {
                seqs.add(rs.getLong(1));
              }
            }
          }
          seqs.sort(null);
          List<CallRecord> out = new ArrayList<>(inputs.size());
          try (PreparedStatement ins =
              c.prepareStatement(
                  "INSERT INTO skiff_calls (call_id, seq, finished, body) VALUES (?, ?, false, ?)")) {
            for (int i = 0; i < inputs.size(); i++) {
              CallRecord r =
                  CallRecord.newBuilder()
                      .setCallId(newCallId())
                      .setFunctionId(function.getId())
                      .setVersion(function.getVersion())
                      .setInput(inputs.get(i))
                      .setStatus(Status.PENDING)
                      .setCreatedMs(nowMillis)
                      .setUpdatedMs(nowMillis)
                      .setSeq(seqs.get(i))
                      .build();
              ins.setString(1, r.getCallId());
              ins.setLong(2, r.getSeq());
              ins.setBytes(3, r.toByteArray());
              ins.addBatch();
              out.add(r);
            }
            ins.executeBatch();
          }
          return out;
        });
  }

  private static String newCallId() {
    byte[] b = new byte[12];
    RANDOM.nextBytes(b);
    return "call-" + HexFormat.of().formatHex(b);
  }

  @Override
  public Optional<CallRecord> call(String callId) throws IOException {
    return db.inTransaction(
        c -> {
          try (PreparedStatement q =
              c.prepareStatement("SELECT body FROM skiff_calls WHERE call_id = ?")) {
            q.setString(1, callId);
            try (ResultSet rs = q.executeQuery()) {
              return rs.next() ? Optional.of(parseCall(rs.getBytes(1))) : Optional.empty();
            }
          }
        });
  }

  @Override
  public void update(List<CallRecord> records) throws IOException {
    db.inTransaction(
        c -> {
          try (PreparedStatement up =
              c.prepareStatement(
                  "UPDATE skiff_calls SET body = ?, finished = ?, finished_ms = ? WHERE call_id = ?")) {
            for (CallRecord r : records) {
              boolean finished = ControlState.finished(r.getStatus());
              up.setBytes(1, r.toByteArray());
              up.setBoolean(2, finished);
              if (finished) {
                up.setLong(3, r.getUpdatedMs());
              } else {
                up.setNull(3, java.sql.Types.BIGINT);
              }
              up.setString(4, r.getCallId());
              up.addBatch();
            }
            int[] counts = up.executeBatch();
            for (int i = 0; i < counts.length; i++) {
              if (counts[i] == 0) {
                throw new IOException("no call " + records.get(i).getCallId());
              }
            }
          }
          return null;
        });
  }

  @Override
  public int forgetFinished(long beforeMillis, int limit) throws IOException {
    return db.inTransaction(
        c -> {
          try (PreparedStatement del =
              c.prepareStatement(
                  "DELETE FROM skiff_calls WHERE call_id IN (SELECT call_id FROM skiff_calls"
                      + " WHERE finished AND finished_ms < ? ORDER BY finished_ms LIMIT ?)")) {
            del.setLong(1, beforeMillis);
            del.setInt(2, limit);
            return del.executeUpdate();
          }
        });
  }

  @Override
  public List<CallRecord> unfinished() throws IOException {
    return calls("SELECT body FROM skiff_calls WHERE NOT finished ORDER BY seq", -1);
  }

  @Override
  public List<CallRecord> recent(int limit) throws IOException {
    return calls("SELECT body FROM skiff_calls ORDER BY seq DESC LIMIT ?", limit);
  }

  private List<CallRecord> calls(String sql, int limit) throws IOException {
    return db.inTransaction(
        c -> {
          List<CallRecord> out = new ArrayList<>();
          try (PreparedStatement q = c.prepareStatement(sql)) {
            if (limit >= 0) {
              q.setInt(1, limit);
            }
            try (ResultSet rs = q.executeQuery()) {
              while (rs.next()) {
                out.add(parseCall(rs.getBytes(1)));
              }
            }
          }
          return out;
        });
  }

  @Override
  public void putBlob(String digest, byte[] bytes, long nowMillis) throws IOException {
    db.inTransaction(
        c -> {
          try (PreparedStatement ins =
              c.prepareStatement(
                  "INSERT INTO skiff_blobs (digest, body, stored_ms) VALUES (?, ?, ?)"
                      + " ON CONFLICT (digest) DO UPDATE SET stored_ms = excluded.stored_ms")) {
            ins.setString(1, digest);
            ins.setBytes(2, bytes);
            ins.setLong(3, nowMillis);
            ins.executeUpdate();
          }
          return null;
        });
  }

  @Override
  public void touchBlobs(java.util.Collection<String> digests, long nowMillis) throws IOException {
    db.inTransaction(
        c -> {
          try (PreparedStatement up =
              c.prepareStatement("UPDATE skiff_blobs SET stored_ms = ? WHERE digest = ?")) {
            for (String d : digests) {
              up.setLong(1, nowMillis);
              up.setString(2, d);
              up.addBatch();
            }
            up.executeBatch();
          }
          return null;
        });
  }

  @Override
  public List<String> blobsStoredBefore(long beforeMillis) throws IOException {
    return db.inTransaction(
        c -> {
          List<String> out = new ArrayList<>();
          try (PreparedStatement q =
              c.prepareStatement("SELECT digest FROM skiff_blobs WHERE stored_ms < ?")) {
            q.setLong(1, beforeMillis);
            try (ResultSet rs = q.executeQuery()) {
              while (rs.next()) {
                out.add(rs.getString(1));
              }
            }
          }
          return out;
        });
  }

  @Override
  public int removeBlobs(java.util.Collection<String> digests, long beforeMillis)
      throws IOException {
    return db.inTransaction(
        c -> {
          int removed = 0;
          try (PreparedStatement d =
              c.prepareStatement("DELETE FROM skiff_blobs WHERE digest = ? AND stored_ms < ?")) {
            for (String x : digests) {
              d.setString(1, x);
              d.setLong(2, beforeMillis);
              removed += d.executeUpdate();
            }
          }
          return removed;
        });
  }

  @Override
  public boolean hasBlob(String digest) throws IOException {
    return db.inTransaction(
        c -> {
          try (PreparedStatement q =
              c.prepareStatement("SELECT 1 FROM skiff_blobs WHERE digest = ?")) {
            q.setString(1, digest);
            try (ResultSet rs = q.executeQuery()) {
              return rs.next();
            }
          }
        });
  }

  @Override
  public Optional<byte[]> blob(String digest) throws IOException {
    return db.inTransaction(
        c -> {
          try (PreparedStatement q =
              c.prepareStatement("SELECT body FROM skiff_blobs WHERE digest = ?")) {
            q.setString(1, digest);
            try (ResultSet rs = q.executeQuery()) {
              return rs.next() ? Optional.of(rs.getBytes(1)) : Optional.empty();
            }
          }
        });
  }

  @Override
  public void putSecret(String name, Map<String, String> values) throws IOException {
    String body = JSON.writeValueAsString(new TreeMap<>(values));
    db.inTransaction(
        c -> {
          try (PreparedStatement ins =
              c.prepareStatement(
                  "INSERT INTO skiff_secrets (name, body) VALUES (?, ?)"
                      + " ON CONFLICT (name) DO UPDATE SET body = excluded.body")) {
            ins.setString(1, name);
            ins.setString(2, body);
            ins.executeUpdate();
          }
          return null;
        });
  }

  @Override
  public Optional<Map<String, String>> secret(String name) throws IOException {
    Optional<String> body =
        db.inTransaction(
            c -> {
              try (PreparedStatement q =
                  c.prepareStatement("SELECT body FROM skiff_secrets WHERE name = ?")) {
                q.setString(1, name);
                try (ResultSet rs = q.executeQuery()) {
                  return rs.next() ? Optional.of(rs.getString(1)) : Optional.<String>empty();
                }
              }
            });
    if (body.isEmpty()) {
      return Optional.empty();
    }
    return Optional.of(JSON.readValue(body.get(), new TypeReference<TreeMap<String, String>>() {}));
  }

  @Override
  public List<String> secrets() throws IOException {
    return db.inTransaction(
        c -> {
          List<String> out = new ArrayList<>();
          try (Statement st = c.createStatement();
              ResultSet rs = st.executeQuery("SELECT name FROM skiff_secrets ORDER BY name")) {
            while (rs.next()) {
              out.add(rs.getString(1));
            }
          }
          return out;
        });
  }

  @Override
  public synchronized void close() {
    db.close();
    if (leader != null) {
      try {
        leader.close();
      } catch (SQLException ignored) {
        // gone already: the lock went with it
      }
      leader = null;
    }
  }
}
