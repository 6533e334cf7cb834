package dev.skiff.scheduler.state;

import java.io.IOException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;

/**
 * One connection to a PostgreSQL database, used by one thread at a time: each unit of work is one
 * transaction, committed before it returns; a connection found broken is opened again once.
 */
public final class PostgresConnection implements AutoCloseable {
  private final String url;
  private Connection db;

  /** Work done in one transaction. */
  @FunctionalInterface
  public interface Work<T> {
    T run(Connection c) throws SQLException, IOException;
  }

  /**
   * A connection to {@code url} ({@code postgresql://[user[:password]@]host[:port]/db} or a {@code
   * jdbc:postgresql:} URL), opened at the first transaction.
   */
  public PostgresConnection(String url) {
    this.url = withTimeouts(jdbc(url));
  }

  /**
   * The URL with timeouts unless it sets its own: a database that stops answering fails a call in a
   * bounded time (10 s to connect, 120 s for an answer) instead of holding its caller for good.
   */
  static String withTimeouts(String url) {
    StringBuilder b = new StringBuilder(url);
    for (String[] t : new String[][] {{"connectTimeout", "10"}, {"socketTimeout", "120"}}) {
      if (!url.contains(t[0] + "=")) {
        b.append(b.indexOf("?") < 0 ? '?' : '&').append(t[0]).append('=').append(t[1]);
      }
    }
    return b.toString();
  }

  /** The JDBC URL, user and password included. */
  public String url() {
    return url;
  }

  /** Runs {@code work} in one transaction, reconnecting once if the connection broke. */
  public synchronized <T> T inTransaction(Work<T> work) throws IOException {
    for (int attempt = 1; ; attempt++) {
      try {
        if (db == null || db.isClosed()) {
          db = DriverManager.getConnection(url);
          db.setAutoCommit(false);
        }
        try {
          T out = work.run(db);
          db.commit();
          return out;
        } catch (SQLException | IOException | RuntimeException e) {
          try {
            db.rollback();
          } catch (SQLException ignored) {
            // the connection is gone; the next attempt opens another
          }
          throw e;
        }
      } catch (SQLException e) {
        boolean broken = e.getSQLState() != null && e.getSQLState().startsWith("08");
        if (broken && attempt == 1) {
          close();
          continue;
        }
        throw new IOException("PostgreSQL: " + e.getMessage(), e);
      }
    }
  }

  /** Runs {@code sql} (statements without parameters: a schema) in one transaction. */
  public void execute(String sql) throws IOException {
    inTransaction(
        c -> {
          try (java.sql.Statement st = c.createStatement()) {
            st.execute(sql);
          }
          return null;
        });
  }

  @Override
  public synchronized void close() {
    try {
      if (db != null) {
        db.close();
      }
    } catch (SQLException ignored) {
      // already broken
    }
    db = null;
  }

  /** {@code postgresql://user:pw@host:port/db?x=y} as a JDBC URL with its user and password. */
  static String jdbc(String url) {
    if (url.startsWith("jdbc:")) {
      return url;
    }
    String rest = url.substring(url.indexOf("://") + 3);
    String user = null;
    String password = null;
    int at = rest.lastIndexOf('@');
    if (at >= 0) {
      String cred = rest.substring(0, at);
      rest = rest.substring(at + 1);
      int colon = cred.indexOf(':');
      user = colon < 0 ? cred : cred.substring(0, colon);
      password = colon < 0 ? null : cred.substring(colon + 1);
    }
    StringBuilder b = new StringBuilder("jdbc:postgresql://").append(rest);
    char sep = rest.contains("?") ? '&' : '?';
    if (user != null) {
      param(b, sep, "user", user);
      sep = '&';
    }
    if (password != null) {
      param(b, sep, "password", password);
    }
    return b.toString();
  }

  /** Appends {@code name=value} to a JDBC URL, the value as the URL had it (percent-decoded). */
  private static void param(StringBuilder b, char sep, String name, String value) {
    b.append(sep)
        .append(name)
        .append('=')
        .append(
            java.net.URLEncoder.encode(
                java.net.URLDecoder.decode(value, java.nio.charset.StandardCharsets.UTF_8),
                java.nio.charset.StandardCharsets.UTF_8));
  }
}
