package dev.skiff.scheduler;

import dev.skiff.casfs.ImageStore;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.client.Tokens;
import dev.skiff.scheduler.control.SchedulerServer;
import dev.skiff.scheduler.state.ControlState;
import dev.skiff.scheduler.worker.Worker;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A scheduler and one worker in this process, on loopback, with fresh tokens: the platform as tests
 * and benchmarks run it. The caller owns the store, the runtime and the state; closing this stops
 * the worker and the scheduler.
 */
public final class LocalPlatform implements AutoCloseable {
  private final SchedulerServer server;
  private final ManagedChannel workerChannel;
  private final Worker worker;
  private final String clientToken;
  private final String workerToken;

  private LocalPlatform(
      SchedulerServer server,
      ManagedChannel workerChannel,
      Worker worker,
      String clientToken,
      String workerToken) {
    this.server = server;
    this.workerChannel = workerChannel;
    this.worker = worker;
    this.clientToken = clientToken;
    this.workerToken = workerToken;
  }

  /** Starts the scheduler on {@code state} and a worker of {@code options}, and waits for it. */
  public static LocalPlatform start(
      ImageStore store, SandboxRuntime rt, ControlState state, Worker.Options options)
      throws IOException {
    String clientToken = Tokens.generate();
    String workerToken = Tokens.generate();
    SchedulerServer server =
        SchedulerServer.start(
            state,
            new SchedulerServer.Options(
                new InetSocketAddress("127.0.0.1", 0), clientToken, workerToken, null, null));
    ManagedChannel channel = null;
    try {
      channel = ControlClient.channel("127.0.0.1:" + server.port(), null);
      Worker worker = Worker.start(store, rt, channel, workerToken, options);
      try {
        worker.attached().get(30, TimeUnit.SECONDS);
      } catch (InterruptedException | ExecutionException | TimeoutException e) {
        worker.close();
        throw new IOException("the worker did not attach: " + e, e);
      }
      return new LocalPlatform(server, channel, worker, clientToken, workerToken);
    } catch (IOException | RuntimeException e) {
      if (channel != null) {
        channel.shutdownNow();
      }
      server.close();
      throw e;
    }
  }

  /** HOST:PORT of the scheduler. */
  public String target() {
    return "127.0.0.1:" + server.port();
  }

  /** The token clients present. */
  public String clientToken() {
    return clientToken;
  }

  /** The token workers present (for more workers, or to check it is refused elsewhere). */
  public String workerToken() {
    return workerToken;
  }

  public SchedulerServer server() {
    return server;
  }

  public Worker worker() {
    return worker;
  }

  /** A client of the scheduler (the caller closes it). */
  public ControlClient client() throws IOException {
    return ControlClient.connect(target(), clientToken, null);
  }

  @Override
  public void close() {
    try {
      worker.close();
    } finally {
      workerChannel.shutdownNow();
      server.close();
    }
  }
}
