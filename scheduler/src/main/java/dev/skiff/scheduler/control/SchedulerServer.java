package dev.skiff.scheduler.control;

import com.google.protobuf.ByteString;
import dev.skiff.scheduler.client.Tokens;
import dev.skiff.scheduler.proto.Assignment;
import dev.skiff.scheduler.proto.CodeRequest;
import dev.skiff.scheduler.proto.CodeResponse;
import dev.skiff.scheduler.proto.PayloadChunk;
import dev.skiff.scheduler.proto.PayloadRef;
import dev.skiff.scheduler.proto.WorkerMessage;
import dev.skiff.scheduler.proto.WorkersGrpc;
import dev.skiff.scheduler.state.ControlState;
import dev.skiff.scheduler.state.PostgresControlState;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallExecutorSupplier;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.InstantSource;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The scheduler on the network: the {@code Control} service for clients (the client token) and the
 * {@code Workers} service for worker daemons (the worker token), over gRPC, with TLS when given a
 * certificate and key. Workers that vanish without closing their connection are noticed by
 * keepalive pings within about {@link #KEEPALIVE_SECONDS} twice over.
 */
public final class SchedulerServer implements AutoCloseable {
  private static final org.slf4j.Logger LOG =
      org.slf4j.LoggerFactory.getLogger(SchedulerServer.class);
  static final int KEEPALIVE_SECONDS = 5;

  /**
   * Where and how to serve. {@code certificate} and {@code key} (PEM) both or neither; {@code data}
   * is the directory of large payloads ({@code payloads/}, see {@link PayloadStore}) and of the
   * functions' logs ({@code logs/}, see {@link LogStore}), null for a temporary one removed on
   * close. With a PostgreSQL state both are kept in its database instead (uploads pass through
   * {@code uploads/} until whole), where a standby that takes over finds them.
   */
  public record Options(
      InetSocketAddress address,
      String clientToken,
      String workerToken,
      Path certificate,
      Path key,
      Path data) {
    /** Without a data directory of its own (a temporary one). */
    public Options(
        InetSocketAddress address,
        String clientToken,
        String workerToken,
        Path certificate,
        Path key) {
      this(address, clientToken, workerToken, certificate, key, null);
    }
  }

  private final Scheduler scheduler;
  private final Server server;
  private final ScheduledExecutorService timers;
  private final ExecutorService accepts;
  private final Path temporaryData;
  private final LogStore logs;
  private final PayloadStore payloads;

  private SchedulerServer(
      Scheduler scheduler,
      Server server,
      ScheduledExecutorService timers,
      ExecutorService accepts,
      Path temporaryData,
      LogStore logs,
      PayloadStore payloads) {
    this.scheduler = scheduler;
    this.server = server;
    this.timers = timers;
    this.accepts = accepts;
    this.temporaryData = temporaryData;
    this.logs = logs;
    this.payloads = payloads;
  }

  /**
   * Starts serving {@code state} (port 0: a free one). The server owns neither state nor tokens.
   */
  public static SchedulerServer start(ControlState state, Options o) throws IOException {
    ScheduledExecutorService timers = dev.skiff.runtime.Timers.single("skiff-scheduler-timers");
    ExecutorService accepts =
        Executors.newFixedThreadPool(
            4, r -> Thread.ofPlatform().daemon().name("skiff-scheduler-accept").unstarted(r));
    Scheduler scheduler;
    Path temporaryData = null;
    PayloadStore payloads = null;
    LogStore logs = null;
    try {
      if (o.data() == null) {
        temporaryData = Files.createTempDirectory("skiff-scheduler-");
      }
      Path data = o.data() != null ? o.data() : temporaryData;
      if (state instanceof PostgresControlState pg) {
        // where a standby that takes over finds them
        payloads = new PayloadStore(data.resolve("uploads"), new PostgresPayloads(pg.url()));
        logs = new PostgresLogStore(pg.url());
      } else {
        payloads = PayloadStore.inDirectory(data.resolve("payloads"));
        logs = new FileLogStore(data.resolve("logs"));
      }
      scheduler = new Scheduler(state, InstantSource.system(), timers);
    } catch (IOException | RuntimeException e) {
      timers.shutdownNow();
      accepts.shutdownNow();
      if (payloads != null) {
        payloads.close();
      }
      if (logs != null) {
        logs.close();
      }
      throw e;
    }
    PayloadStore payloadStore = payloads;
    LogStore logStore = logs;
    scheduler.payloads(payloadStore::exists);
    scheduler.logStore(logStore);
    timers.scheduleWithFixedDelay(
        () -> payloadStore.sweep(java.time.Instant.now()), 0, 10, TimeUnit.MINUTES);
    timers.scheduleWithFixedDelay(
        () -> {
          try {
            scheduler.sweepCode();
          } catch (IOException | RuntimeException e) {
            LOG.warn("removing code no function needs: {}", e.toString());
          }
        },
        10,
        60,
        TimeUnit.MINUTES);
    WorkersGrpc.WorkersImplBase workers =
        new WorkersGrpc.WorkersImplBase() {
          @Override
          public StreamObserver<WorkerMessage> attach(StreamObserver<Assignment> out) {
            return scheduler.attach(out);
          }

          @Override
          public void fetchCode(CodeRequest req, StreamObserver<CodeResponse> out) {
            try {
              var zip = scheduler.code(req.getDigest());
              if (zip.isEmpty()) {
                out.onError(
                    Status.NOT_FOUND
                        .withDescription("no code bundle " + req.getDigest())
                        .asRuntimeException());
                return;
              }
              out.onNext(CodeResponse.newBuilder().setZip(ByteString.copyFrom(zip.get())).build());
              out.onCompleted();
            } catch (IOException e) {
              out.onError(Status.INTERNAL.withDescription(e.toString()).asRuntimeException());
            }
          }

          @Override
          public StreamObserver<PayloadChunk> putPayload(StreamObserver<PayloadRef> out) {
            return payloadStore.put(out);
          }

          @Override
          public void getPayload(PayloadRef ref, StreamObserver<PayloadChunk> out) {
            payloadStore.get(ref, out);
          }
        };
    NettyServerBuilder b =
        NettyServerBuilder.forAddress(o.address())
            .addService(
                ServerInterceptors.intercept(
                    new ControlService(scheduler, accepts, payloads),
                    Tokens.require(o.clientToken())))
            .addService(ServerInterceptors.intercept(workers, Tokens.require(o.workerToken())))
            // A worker's messages (a call's end, a container's start) take only the scheduler's
            // lock: handled on the event loop, they skip a thread hand-off on every call's way
            // back. Everything else (disk writes, uploads) runs on the default executor.
            .callExecutor(
                new ServerCallExecutorSupplier() {
                  @Override
                  public <Q, R> Executor getExecutor(ServerCall<Q, R> call, Metadata headers) {
                    return call.getMethodDescriptor()
                            .getFullMethodName()
                            .equals(WorkersGrpc.getAttachMethod().getFullMethodName())
                        ? Runnable::run
                        : null;
                  }
                })
            .maxInboundMessageSize(80 << 20) // a deploy carries up to 64 MiB of code
            .keepAliveTime(KEEPALIVE_SECONDS, TimeUnit.SECONDS)
            .keepAliveTimeout(KEEPALIVE_SECONDS, TimeUnit.SECONDS)
            .permitKeepAliveTime(KEEPALIVE_SECONDS, TimeUnit.SECONDS)
            .permitKeepAliveWithoutCalls(true);
    if (o.certificate() != null) {
      b.sslContext(GrpcSslContexts.forServer(o.certificate().toFile(), o.key().toFile()).build());
    }
    Server server;
    try {
      server = b.build().start();
    } catch (IOException | RuntimeException e) {
      scheduler.close();
      timers.shutdownNow();
      accepts.shutdownNow();
      logStore.close();
      payloadStore.close();
      throw new IOException("cannot listen on " + o.address() + ": " + e.getMessage(), e);
    }
    return new SchedulerServer(
        scheduler, server, timers, accepts, temporaryData, logStore, payloadStore);
  }

  public Scheduler scheduler() {
    return scheduler;
  }

  public int port() {
    return server.getPort();
  }

  /** Stops serving; calls not finished stay in the state for the next start. */
  @Override
  public void close() {
    server.shutdown();
    scheduler.close();
    try {
      if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
        server.shutdownNow();
      }
    } catch (InterruptedException e) {
      server.shutdownNow();
      Thread.currentThread().interrupt();
    }
    timers.shutdownNow();
    accepts.shutdownNow();
    logs.close();
    payloads.close();
    if (temporaryData != null) {
      try {
        dev.skiff.casfs.util.Trees.delete(temporaryData);
      } catch (IOException e) {
        // a temporary directory: the system's to clean
      }
    }
  }
}
