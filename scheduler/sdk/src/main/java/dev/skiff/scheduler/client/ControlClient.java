package dev.skiff.scheduler.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.skiff.scheduler.CodeBundle;
import dev.skiff.scheduler.Payloads;
import dev.skiff.scheduler.proto.CallInfo;
import dev.skiff.scheduler.proto.CallRequest;
import dev.skiff.scheduler.proto.CancelRequest;
import dev.skiff.scheduler.proto.ContainerInfo;
import dev.skiff.scheduler.proto.ControlGrpc;
import dev.skiff.scheduler.proto.DeployRequest;
import dev.skiff.scheduler.proto.DeployResponse;
import dev.skiff.scheduler.proto.FunctionInfo;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.proto.GetRequest;
import dev.skiff.scheduler.proto.IndexedInput;
import dev.skiff.scheduler.proto.IndexedResult;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.ListRequest;
import dev.skiff.scheduler.proto.LogLine;
import dev.skiff.scheduler.proto.LogsRequest;
import dev.skiff.scheduler.proto.MapInput;
import dev.skiff.scheduler.proto.MapOutput;
import dev.skiff.scheduler.proto.PayloadRef;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.SecretRequest;
import dev.skiff.scheduler.proto.SpawnRequest;
import dev.skiff.scheduler.proto.WorkerInfo;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A client of the scheduler's {@code Control} service, for the CLI and for tests: one channel, the
 * client token on every call. Errors come as {@link StatusRuntimeException} with the scheduler's
 * description. Thread safe.
 */
public final class ControlClient implements AutoCloseable {
  /**
   * A map sends up to this many inputs in one message, and at most {@link Payloads#BATCH_BYTES}.
   */
  private static final int MAX_INPUTS_PER_MESSAGE = 256;

  private final ManagedChannel channel;
  private final ControlGrpc.ControlBlockingStub blocking;
  private final ControlGrpc.ControlStub async;

  public ControlClient(ManagedChannel channel, String token) {
    this.channel = channel;
    this.blocking = ControlGrpc.newBlockingStub(channel).withCallCredentials(Tokens.bearer(token));
    this.async = ControlGrpc.newStub(channel).withCallCredentials(Tokens.bearer(token));
  }

  /** A client of the scheduler at {@code target} (HOST:PORT); TLS when {@code caCert} is given. */
  public static ControlClient connect(String target, String token, Path caCert) throws IOException {
    return new ControlClient(channel(target, caCert), token);
  }

  /**
   * A channel to {@code target}, HOST:PORT or a list HOST:PORT,HOST:PORT of a leader and its
   * standbys (the first that answers serves; see {@link SchedulerList}): plain, or TLS trusting
   * {@code caCert} (PEM).
   */
  public static ManagedChannel channel(String target, Path caCert) throws IOException {
    if (target.contains(",")) {
      for (String e : target.split(",")) {
        SchedulerList.parse(e.trim()); // refuses a malformed entry here, with what to write
      }
    }
    ChannelCredentials creds =
        caCert == null
            ? InsecureChannelCredentials.create()
            : TlsChannelCredentials.newBuilder().trustManager(caCert.toFile()).build();
    return Grpc.newChannelBuilder(SchedulerList.channelTarget(target), creds)
        .maxInboundMessageSize(80 << 20)
        .keepAliveTime(30, TimeUnit.SECONDS)
        .build();
  }

  public ManagedChannel channel() {
    return channel;
  }

  /** The blocking stub with this client's token, for calls this class does not wrap. */
  public ControlGrpc.ControlBlockingStub stub() {
    return blocking;
  }

  /** Stops every function of {@code app}; returns their ids. */
  public List<String> stopApp(String app) {
    return blocking
        .stopApp(dev.skiff.scheduler.proto.StopAppRequest.newBuilder().setApp(app).build())
        .getStoppedList();
  }

  /** Deploys a function with the code in {@code codeDir} (null: none). */
  public DeployResponse deploy(FunctionSpec spec, Path codeDir) throws IOException {
    DeployRequest.Builder b = DeployRequest.newBuilder().setSpec(spec);
    if (codeDir != null) {
      b.setCode(ByteString.copyFrom(CodeBundle.pack(codeDir)));
    }
    return blocking.deploy(b.build());
  }

  /** An input of JSON text: an array of arguments and an object of named ones (null: none). */
  public static Input input(String argsJson, String kwargsJson) {
    return Input.newBuilder().setArgsJson(utf8(argsJson)).setKwargsJson(utf8(kwargsJson)).build();
  }

  private static ByteString utf8(String s) {
    return s == null || s.isEmpty()
        ? ByteString.EMPTY
        : UnsafeByteOperations.unsafeWrap(s.getBytes(StandardCharsets.UTF_8));
  }

  private static final ByteString ARGS = ByteString.copyFromUtf8("{\"args\":");
  private static final ByteString KWARGS = ByteString.copyFromUtf8(",\"kwargs\":");
  private static final ByteString EMPTY_ARRAY = ByteString.copyFromUtf8("[]");
  private static final ByteString EMPTY_OBJECT = ByteString.copyFromUtf8("{}");
  private static final ByteString END = ByteString.copyFromUtf8("}");

  /** Calls and waits up to {@code wait} (null: as long as the scheduler lets a call wait). */
  public Result call(String functionId, Input input, Duration wait) {
    return resolve(
        blocking.call(
            CallRequest.newBuilder()
                .setFunctionId(functionId)
                .setInput(prepare(input))
                .setWaitMs(wait == null ? 0 : wait.toMillis())
                .build()));
  }

  /**
   * Builds an image on a worker from {@code dockerfile} and a context zip (null: none), uploading
   * the context if the scheduler lacks it; hands each line of the build's log to {@code log} and
   * returns the image's name.
   *
   * @throws StatusRuntimeException FAILED_PRECONDITION saying why the build failed
   */
  public String buildImage(
      String dockerfile,
      byte[] contextZip,
      boolean force,
      java.util.function.Consumer<String> log) {
    String context = "";
    if (contextZip != null) {
      context = CodeBundle.digest(contextZip);
      if (!blocking
          .missingCode(
              dev.skiff.scheduler.proto.CodeDigests.newBuilder().addDigests(context).build())
          .getDigestsList()
          .isEmpty()) {
        blocking.putCode(
            dev.skiff.scheduler.proto.CodeUpload.newBuilder()
                .setJar(ByteString.copyFrom(contextZip))
                .build());
      }
    }
    var events =
        blocking
            .withDeadlineAfter(2, TimeUnit.HOURS)
            .buildImage(
                dev.skiff.scheduler.proto.BuildImageRequest.newBuilder()
                    .setDockerfile(dockerfile)
                    .setContextDigest(context)
                    .setForce(force)
                    .build());
    String image = null;
    while (events.hasNext()) {
      var e = events.next();
      if (e.hasLog()) {
        log.accept(e.getLog());
      } else if (!e.getImage().isEmpty()) {
        image = e.getImage();
      }
    }
    if (image == null) {
      throw io.grpc.Status.INTERNAL
          .withDescription("the build ended without naming its image")
          .asRuntimeException();
    }
    return image;
  }

  /** Starts a call; returns its id. */
  public String spawn(String functionId, Input input) {
    return blocking
        .spawn(SpawnRequest.newBuilder().setFunctionId(functionId).setInput(prepare(input)).build())
        .getCallId();
  }

  /** A call's result, waiting up to {@code wait} (zero: its state now). */
  public Result get(String callId, Duration wait) {
    return resolve(
        blocking.get(GetRequest.newBuilder().setCallId(callId).setWaitMs(wait.toMillis()).build()));
  }

  /**
   * An input as it is sent: inline up to {@link Payloads#INLINE_MAX}, else uploaded to the payload
   * store first and named.
   */
  Input prepare(Input in) {
    if (in.hasRaw()) {
      if (in.getRaw().size() <= Payloads.INLINE_MAX) {
        return in;
      }
      try {
        String name =
            Payloads.upload(async.withDeadlineAfter(5, TimeUnit.MINUTES)::putPayload, in.getRaw());
        return Input.newBuilder().setPayload(name).setPayloadRaw(true).build();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    if ((long) in.getArgsJson().size() + in.getKwargsJson().size() <= Payloads.INLINE_MAX) {
      return in;
    }
    ByteString doc =
        ARGS.concat(in.getArgsJson().isEmpty() ? EMPTY_ARRAY : in.getArgsJson())
            .concat(KWARGS)
            .concat(in.getKwargsJson().isEmpty() ? EMPTY_OBJECT : in.getKwargsJson())
            .concat(END);
    try {
      String name = Payloads.upload(async.withDeadlineAfter(5, TimeUnit.MINUTES)::putPayload, doc);
      return Input.newBuilder().setPayload(name).build();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * A result with its output inline (JSON, or raw bytes), fetched from the payload store where it
   * was stored.
   */
  Result resolve(Result r) {
    if (r.getOutputPayload().isEmpty()) {
      return r;
    }
    try {
      byte[] out =
          Payloads.download(
              blocking
                  .withDeadlineAfter(5, TimeUnit.MINUTES)
                  .getPayload(PayloadRef.newBuilder().setName(r.getOutputPayload()).build()));
      Result.Builder b = r.toBuilder().clearOutputPayload().clearOutputPayloadRaw();
      return r.getOutputPayloadRaw()
          ? b.setOutputRaw(UnsafeByteOperations.unsafeWrap(out)).build()
          : b.setOutputJson(UnsafeByteOperations.unsafeWrap(out)).build();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Cancels a call; false if it had finished. */
  public boolean cancel(String callId, boolean terminateContainer) {
    return blocking
        .cancel(
            CancelRequest.newBuilder()
                .setCallId(callId)
                .setTerminateContainer(terminateContainer)
                .build())
        .getCancelled();
  }

  /**
   * Runs {@code inputs} through a function with at most {@code window} inputs outstanding; {@code
   * results} hears each result with its input's position as it finishes (in any order). Returns
   * once every result has come, or throws what broke the stream.
   */
  public void map(String functionId, Iterator<Input> inputs, int window, ResultConsumer results)
      throws InterruptedException {
    Semaphore room = new Semaphore(window);
    CompletableFuture<Void> done = new CompletableFuture<>();
    ClientResponseObserver<MapInput, MapOutput> in =
        new ClientResponseObserver<>() {
          @Override
          public void beforeStart(ClientCallStreamObserver<MapInput> requests) {}

          @Override
          public void onNext(MapOutput m) {
            if (m.getResultsCount() > 0) {
              room.release(m.getResultsCount());
              for (IndexedResult r : m.getResultsList()) {
                results.accept(r.getIndex(), resolve(r.getResult()));
              }
            }
          }

          @Override
          public void onError(Throwable t) {
            done.completeExceptionally(t);
            room.release(window);
          }

          @Override
          public void onCompleted() {
            done.complete(null);
          }
        };
    var out = async.map(in);
    long index = 0;
    try {
      while (inputs.hasNext() && !done.isDone()) {
        room.acquire();
        if (done.isDone()) {
          break;
        }
        // Whatever room there is now goes in one message.
        MapInput.Builder m = MapInput.newBuilder();
        if (index == 0) {
          m.setFunctionId(functionId);
        }
        Input first = prepare(inputs.next());
        m.addInputs(IndexedInput.newBuilder().setIndex(index++).setInput(first));
        long bytes = first.getSerializedSize();
        while (m.getInputsCount() < MAX_INPUTS_PER_MESSAGE
            && bytes < Payloads.BATCH_BYTES
            && inputs.hasNext()
            && room.tryAcquire()) {
          Input next = prepare(inputs.next());
          m.addInputs(IndexedInput.newBuilder().setIndex(index++).setInput(next));
          bytes += next.getSerializedSize();
        }
        out.onNext(m.build());
      }
      out.onCompleted();
    } catch (RuntimeException | InterruptedException e) {
      out.onError(e);
      throw e;
    }
    try {
      done.get();
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r;
      }
      throw new IllegalStateException(e.getCause());
    }
  }

  /** Hears one result of a {@link #map}. */
  @FunctionalInterface
  public interface ResultConsumer {
    void accept(long index, Result result);
  }

  /** A function's or a call's log lines; with {@code follow}, returns once the stream ends. */
  public void logs(String functionId, String callId, boolean follow, Consumer<LogLine> to) {
    logs(functionId, callId, follow, 0, to);
  }

  /** As {@link #logs(String, String, boolean, Consumer)}, only lines from {@code sinceMs} on. */
  public void logs(
      String functionId, String callId, boolean follow, long sinceMs, Consumer<LogLine> to) {
    Iterator<LogLine> it =
        blocking
            .withDeadline(null)
            .logs(
                LogsRequest.newBuilder()
                    .setFunctionId(functionId == null ? "" : functionId)
                    .setCallId(callId == null ? "" : callId)
                    .setFollow(follow)
                    .setSinceMs(sinceMs)
                    .build());
    it.forEachRemaining(to);
  }

  public List<String> createSecret(String name, Map<String, String> values) {
    return blocking
        .createSecret(SecretRequest.newBuilder().setName(name).putAllValues(values).build())
        .getNamesList();
  }

  public List<String> secrets() {
    return blocking.secrets(ListRequest.getDefaultInstance()).getNamesList();
  }

  public List<WorkerInfo> workers() {
    return blocking.workers(ListRequest.getDefaultInstance()).getWorkersList();
  }

  public List<ContainerInfo> containers() {
    return blocking.containers(ListRequest.getDefaultInstance()).getContainersList();
  }

  public List<FunctionInfo> functions() {
    return blocking.functions(ListRequest.getDefaultInstance()).getFunctionsList();
  }

  public List<CallInfo> calls(int limit, String functionId) {
    return blocking
        .calls(
            ListRequest.newBuilder()
                .setLimit(limit)
                .setFunctionId(functionId == null ? "" : functionId)
                .build())
        .getCallsList();
  }

  @Override
  public void close() {
    channel.shutdownNow();
    try {
      channel.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
