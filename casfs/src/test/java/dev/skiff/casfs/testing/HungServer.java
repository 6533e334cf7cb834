package dev.skiff.casfs.testing;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A server that accepts every connection, reads what it is sent and never answers: a store that
 * hangs (an overloaded service, a black-holed route). Closing it closes every connection and frees
 * the port, so a real server can take the port over.
 */
public final class HungServer implements AutoCloseable {
  private final ServerSocket server;
  private final List<Socket> held = new CopyOnWriteArrayList<>();

  private HungServer(int port) throws IOException {
    server = new ServerSocket();
    server.setReuseAddress(true);
    server.bind(new InetSocketAddress("127.0.0.1", port));
    Thread.ofPlatform().daemon().name("hung-server-" + port).start(this::accept);
  }

  /** Listens on {@code port} (0: a free one). */
  public static HungServer on(int port) throws IOException {
    return new HungServer(port);
  }

  public int port() {
    return server.getLocalPort();
  }

  private void accept() {
    while (!server.isClosed()) {
      Socket s;
      try {
        s = server.accept();
      } catch (IOException closed) {
        return;
      }
      held.add(s);
      Thread.ofPlatform().daemon().start(() -> drain(s));
    }
  }

  private static void drain(Socket s) {
    byte[] buf = new byte[64 << 10];
    try (InputStream in = s.getInputStream()) {
      while (in.read(buf) >= 0) {
        // swallowed: nothing is ever answered
      }
    } catch (IOException closed) {
      // the client gave up, or the server closed
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
    for (Socket s : held) {
      s.close();
    }
  }
}
