package dev.skiff.tools;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.api.ImageSpec;
import dev.skiff.runtime.ExitStatus;
import dev.skiff.runtime.Sandbox;
import dev.skiff.runtime.SandboxProcess;
import dev.skiff.runtime.SandboxRuntime;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A daemon's runtime lent to {@code skiff run} and {@code skiff restore} of the same home: a daemon
 * ({@code skiff serve}, {@code skiff worker}) listens on {@code HOME/run/daemon.sock} (owner-only),
 * and those commands, finding it, send their request there instead of opening a runtime of their
 * own (store, runsc, image mount): the daemon starts the sandbox on its resident runtime and
 * streams the process's output back, the command's stdin to it, and its exit code.
 *
 * <p>Frames both ways: a type byte, a 4-byte big-endian length, that many bytes. Client to daemon:
 * {@code Q} the request (JSON, first), {@code I} stdin bytes, {@code E} end of stdin. Daemon to
 * client: {@code O} stdout, {@code R} stderr, {@code X} the exit code (4 bytes), {@code F} a
 * failure before the process started (its message). The client closing the connection (Ctrl-C)
 * tears the sandbox down.
 */
final class LocalDaemon implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(LocalDaemon.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MAX_FRAME = 1 << 20;

  /**
   * What to start: {@code op} "run" (with {@code command}) or "restore" (with {@code snapshot});
   * the sandbox options as the command line gave them, paths already absolute.
   */
  record Request(
      String op,
      String image,
      String snapshot,
      List<String> command,
      boolean stdin,
      List<String> env,
      String workdir,
      String user,
      List<String> volumes,
      String timeout,
      String memory,
      double cpus,
      boolean network,
      String scratch) {

    /** The request of a command line's sandbox options; volumes and scratch made absolute here. */
    static Request of(
        String op,
        String image,
        String snapshot,
        List<String> command,
        boolean stdin,
        SandboxCliOptions o) {
      List<String> volumes =
          o.volumes.stream()
              .map(
                  v -> {
                    var parsed = dev.skiff.runtime.SandboxOptions.Volume.parse(v);
                    return parsed.source()
                        + ":"
                        + parsed.target()
                        + (parsed.readOnly() ? ":ro" : "");
                  })
              .toList();
      return new Request(
          op,
          image,
          snapshot,
          command,
          stdin,
          o.env,
          o.workdir,
          o.user,
          volumes,
          o.timeout,
          o.memory,
          o.cpus,
          o.network,
          o.scratch == null ? null : o.scratch.toAbsolutePath().toString());
    }

    SandboxCliOptions options() {
      SandboxCliOptions o = new SandboxCliOptions();
      o.env = env == null ? List.of() : env;
      o.workdir = workdir;
      o.user = user;
      o.volumes = volumes == null ? List.of() : volumes;
      o.timeout = timeout;
      o.memory = memory;
      o.cpus = cpus;
      o.network = network;
      o.scratch = scratch == null ? null : Path.of(scratch);
      return o;
    }
  }

  static Path socket(Path home) {
    return home.resolve("run").resolve("daemon.sock");
  }

  private final Path path;
  private final ServerSocketChannel server;
  private final SandboxRuntime rt;
  private final ExecutorService connections =
      Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("skiff-daemon-", 0).factory());
  private final Thread acceptor;

  private LocalDaemon(Path path, ServerSocketChannel server, SandboxRuntime rt) {
    this.path = path;
    this.server = server;
    this.rt = rt;
    this.acceptor =
        Thread.ofPlatform().daemon().name("skiff-daemon-accept").unstarted(this::accept);
  }

  /**
   * Listens on the home's socket (replacing a dead daemon's) for clients of {@code rt}; null when
   * another daemon of the home listens there already (it keeps serving them).
   */
  static LocalDaemon start(Path home, SandboxRuntime rt) throws IOException {
    Path path = socket(home);
    Files.createDirectories(path.getParent());
    if (Files.exists(path)) {
      try (SocketChannel live = SocketChannel.open(UnixDomainSocketAddress.of(path))) {
        LOG.info("another daemon of {} serves skiff run and restore; this one does not", home);
        return null;
      } catch (IOException dead) {
        Files.deleteIfExists(path); // a socket file outlives a killed daemon
      }
    }
    ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    try {
      server.bind(UnixDomainSocketAddress.of(path));
      Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-------"));
    } catch (IOException | RuntimeException e) {
      server.close();
      throw e;
    }
    LocalDaemon d = new LocalDaemon(path, server, rt);
    d.acceptor.start();
    return d;
  }

  private void accept() {
    while (server.isOpen()) {
      try {
        SocketChannel c = server.accept();
        connections.execute(() -> serve(c));
      } catch (ClosedChannelException e) {
        return;
      } catch (IOException e) {
        LOG.warn("daemon socket: {}", e.toString());
      }
    }
  }

  private static void frame(DataOutputStream out, int type, byte[] b, int off, int len)
      throws IOException {
    synchronized (out) {
      out.writeByte(type);
      out.writeInt(len);
      out.write(b, off, len);
      out.flush();
    }
  }

  /** An output stream that sends what is written as frames of {@code type}. */
  private static OutputStream frames(DataOutputStream out, int type) {
    return new OutputStream() {
      @Override
      public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
      }

      @Override
      public void write(byte[] b, int off, int len) throws IOException {
        if (len > 0) {
          frame(out, type, b, off, len);
        }
      }
    };
  }

  private void serve(SocketChannel c) {
    try (c) {
      DataInputStream in = new DataInputStream(Channels.newInputStream(c));
      DataOutputStream out = new DataOutputStream(Channels.newOutputStream(c));
      if (in.readByte() != 'Q') {
        return;
      }
      byte[] body = readBody(in);
      long t0 = System.nanoTime();
      Request q;
      Sandbox sb;
      try {
        q = JSON.readValue(body, Request.class);
        var options = q.options().options();
        ImageSpec image = ImageSpec.parse(q.image());
        LOG.info("daemon: {} {} for a client of this home", q.op(), q.image());
        sb =
            switch (q.op()) {
              case "run" -> rt.run(image, options, q.command(), q.stdin());
              case "restore" ->
                  rt.restore(rt.snapshots().find(image, q.snapshot()), options, q.stdin());
              default -> throw new IllegalArgumentException("unknown request " + q.op());
            };
      } catch (Exception e) {
        byte[] m = SkiffCli.message(e).getBytes(StandardCharsets.UTF_8);
        frame(out, 'F', m, 0, m.length);
        return;
      }
      try (sb) {
        SandboxProcess p = sb.main().orElseThrow();
        Thread[] pumps = p.pipeTo(frames(out, 'O'), frames(out, 'R'));
        PipedOutputStream stdin = new PipedOutputStream();
        if (q.stdin()) {
          p.pipeStdinFrom(new PipedInputStream(stdin, 1 << 16));
        }
        AtomicBoolean ended = new AtomicBoolean();
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    while (true) {
                      int type = in.readByte();
                      byte[] b = readBody(in);
                      if (type == 'I' && q.stdin()) {
                        stdin.write(b);
                        stdin.flush();
                      } else if (type == 'E') {
                        stdin.close();
                      }
                    }
                  } catch (IOException e) {
                    // the connection ended: after the exit code, as it should; before it, the
                    // client is gone (Ctrl-C), and so goes its sandbox
                    try {
                      stdin.close();
                      if (!ended.get()) {
                        sb.close();
                      }
                    } catch (IOException ignored) {
                      // closing already
                    }
                  }
                });
        ExitStatus status = p.waitFor();
        for (Thread t : pumps) {
          t.join(5_000);
        }
        String why = RunCommand.why(sb, status);
        if (why != null) {
          byte[] m = (why + "\n").getBytes(StandardCharsets.UTF_8);
          frame(out, 'R', m, 0, m.length);
        }
        ended.set(true); // the sandbox is this thread's to close from here on
        byte[] code = java.nio.ByteBuffer.allocate(4).putInt(status.shellCode()).array();
        frame(out, 'X', code, 0, 4);
        LOG.info(
            "daemon: {} {} exited with {} after {} ms",
            q.op(),
            q.image(),
            status.shellCode(),
            (System.nanoTime() - t0) / 1_000_000);
      }
    } catch (IOException e) {
      LOG.debug("daemon client: {}", e.toString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static byte[] readBody(DataInputStream in) throws IOException {
    int len = in.readInt();
    if (len < 0 || len > MAX_FRAME) {
      throw new IOException("a frame of " + len + " bytes");
    }
    byte[] b = new byte[len];
    in.readFully(b);
    return b;
  }

  /**
   * Hands {@code q} to the daemon of {@code home}, if one listens: streams this process's stdin
   * (when the request takes it) and the sandbox's output, and returns the exit code. Empty when no
   * daemon answers (none running, or a dead one's socket), so the caller runs it itself.
   */
  static Optional<Integer> tryHandOff(Path home, Request q) throws IOException {
    Path path = socket(home);
    if (!Files.exists(path) || System.getenv("SKIFF_NO_DAEMON") != null) {
      return Optional.empty();
    }
    SocketChannel c;
    try {
      c = SocketChannel.open(UnixDomainSocketAddress.of(path));
    } catch (IOException e) {
      return Optional.empty(); // a dead daemon's socket
    }
    try (c) {
      DataOutputStream out = new DataOutputStream(Channels.newOutputStream(c));
      DataInputStream in = new DataInputStream(Channels.newInputStream(c));
      byte[] req = JSON.writeValueAsBytes(q);
      frame(out, 'Q', req, 0, req.length);
      if (q.stdin()) {
        Thread.ofPlatform()
            .daemon()
            .name("skiff-stdin")
            .start(
                () -> {
                  byte[] buf = new byte[1 << 16];
                  try (InputStream stdin = System.in) {
                    for (int n; (n = stdin.read(buf)) > 0; ) {
                      frame(out, 'I', buf, 0, n);
                    }
                    frame(out, 'E', buf, 0, 0);
                  } catch (IOException e) {
                    // the sandbox is done, or the daemon went away: the reply says which
                  }
                });
      }
      OutputStream stdout = new java.io.FileOutputStream(java.io.FileDescriptor.out);
      OutputStream stderr = new java.io.FileOutputStream(java.io.FileDescriptor.err);
      while (true) {
        int type;
        try {
          type = in.readByte();
        } catch (EOFException e) {
          throw new IOException("the daemon went away before the command ended");
        }
        byte[] b = readBody(in);
        switch (type) {
          case 'O' -> stdout.write(b);
          case 'R' -> stderr.write(b);
          case 'X' -> {
            return Optional.of(java.nio.ByteBuffer.wrap(b).getInt());
          }
          case 'F' -> throw new DaemonRefused(new String(b, StandardCharsets.UTF_8));
          default -> throw new IOException("the daemon sent a frame of type " + type);
        }
      }
    }
  }

  /** The daemon could not start what was asked (its message, as the command would print it). */
  static final class DaemonRefused extends IOException {
    DaemonRefused(String message) {
      super(message);
    }
  }

  @Override
  public void close() {
    try {
      server.close();
      Files.deleteIfExists(path);
    } catch (IOException e) {
      LOG.debug("closing the daemon socket: {}", e.toString());
    }
    connections.shutdownNow();
  }
}
