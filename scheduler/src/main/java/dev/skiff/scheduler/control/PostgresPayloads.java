package dev.skiff.scheduler.control;

import com.google.protobuf.ByteString;
import dev.skiff.scheduler.Payloads;
import dev.skiff.scheduler.state.PostgresConnection;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Instant;

/**
 * Large payloads in the PostgreSQL database that holds the scheduler's state, so that a standby
 * scheduler that takes over serves the inputs and results its predecessor accepted. A payload is
 * kept in parts of {@link Payloads#CHUNK}, written in one transaction (a payload is there whole or
 * not at all) and read a part at a time. On a connection of its own, so a large upload never holds
 * up the state's writes.
 *
 * <pre>
 * skiff_payloads      name         -> size, stored_ms
 * skiff_payload_parts (name, part) -> bytes
 * </pre>
 */
final class PostgresPayloads implements PayloadStore.Backing {
  private static final String SCHEMA =
      """
      CREATE TABLE IF NOT EXISTS skiff_payloads (
        name text PRIMARY KEY, size bigint NOT NULL, stored_ms bigint NOT NULL);
      CREATE TABLE IF NOT EXISTS skiff_payload_parts (
        name text NOT NULL REFERENCES skiff_payloads ON DELETE CASCADE, part int NOT NULL,
        body bytea NOT NULL, PRIMARY KEY (name, part));
      CREATE INDEX IF NOT EXISTS skiff_payloads_stored ON skiff_payloads (stored_ms);
      """;

  private final PostgresConnection db;

  PostgresPayloads(String url) throws IOException {
    this.db = new PostgresConnection(url);
    db.execute(SCHEMA);
  }

  @Override
  public boolean exists(String name) throws IOException {
    return db.inTransaction(
        c -> {
          try (PreparedStatement q =
              c.prepareStatement("SELECT 1 FROM skiff_payloads WHERE name = ?")) {
            q.setString(1, name);
            try (ResultSet rs = q.executeQuery()) {
              return rs.next();
            }
          }
        });
  }

  @Override
  public void keep(String name, Path whole, long size) throws IOException {
    try {
      db.inTransaction(
          c -> {
            try (PreparedStatement up =
                c.prepareStatement(
                    "INSERT INTO skiff_payloads (name, size, stored_ms) VALUES (?, ?, ?)"
                        + " ON CONFLICT (name) DO UPDATE SET stored_ms = excluded.stored_ms"
                        + " RETURNING (xmax = 0)")) {
              up.setString(1, name);
              up.setLong(2, size);
              up.setLong(3, System.currentTimeMillis());
              try (ResultSet rs = up.executeQuery()) {
                rs.next();
                if (!rs.getBoolean(1)) {
                  return null; // kept already: same name, same bytes
                }
              }
            }
            try (InputStream in = Files.newInputStream(whole);
                PreparedStatement ins =
                    c.prepareStatement(
                        "INSERT INTO skiff_payload_parts (name, part, body) VALUES (?, ?, ?)")) {
              byte[] buf = new byte[Payloads.CHUNK];
              for (int part = 0; ; part++) {
                int n = in.readNBytes(buf, 0, buf.length);
                if (n == 0) {
                  break;
                }
                ins.setString(1, name);
                ins.setInt(2, part);
                ins.setBytes(3, n == buf.length ? buf : java.util.Arrays.copyOf(buf, n));
                ins.executeUpdate();
              }
            }
            return null;
          });
    } finally {
      Files.deleteIfExists(whole);
    }
  }

  @Override
  public PayloadStore.Chunks open(String name) throws IOException {
    long size =
        db.inTransaction(
            c -> {
              try (PreparedStatement q =
                  c.prepareStatement("SELECT size FROM skiff_payloads WHERE name = ?")) {
                q.setString(1, name);
                try (ResultSet rs = q.executeQuery()) {
                  return rs.next() ? rs.getLong(1) : -1L;
                }
              }
            });
    if (size < 0) {
      throw new IOException("payload " + name + " is gone");
    }
    return new PayloadStore.Chunks() {
      private int part;
      private long read;

      @Override
      public ByteString next() throws IOException {
        ByteString b =
            db.inTransaction(
                c -> {
                  try (PreparedStatement q =
                      c.prepareStatement(
                          "SELECT body FROM skiff_payload_parts WHERE name = ? AND part = ?")) {
                    q.setString(1, name);
                    q.setInt(2, part);
                    try (ResultSet rs = q.executeQuery()) {
                      return rs.next() ? ByteString.copyFrom(rs.getBytes(1)) : null;
                    }
                  }
                });
        if (b == null) {
          if (read != size) { // removed while it was read: never hand out part of it as all
            throw new IOException(
                "payload "
                    + name
                    + " was removed while it was read ("
                    + read
                    + " of "
                    + size
                    + ")");
          }
          return null;
        }
        part++;
        read += b.size();
        return b;
      }

      @Override
      public void close() {
        // nothing held between parts
      }
    };
  }

  @Override
  public int sweep(Instant before) throws IOException {
    return db.inTransaction(
        c -> {
          try (PreparedStatement d =
              c.prepareStatement("DELETE FROM skiff_payloads WHERE stored_ms < ?")) {
            d.setLong(1, before.toEpochMilli());
            return d.executeUpdate();
          }
        });
  }

  @Override
  public void close() {
    db.close();
  }
}
