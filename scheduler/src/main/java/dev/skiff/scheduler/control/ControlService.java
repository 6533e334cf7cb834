package dev.skiff.scheduler.control;

import dev.skiff.scheduler.Payloads;
import dev.skiff.scheduler.proto.Accepted;
import dev.skiff.scheduler.proto.CallRequest;
import dev.skiff.scheduler.proto.CallsResponse;
import dev.skiff.scheduler.proto.CancelRequest;
import dev.skiff.scheduler.proto.CancelResponse;
import dev.skiff.scheduler.proto.CodeDigests;
import dev.skiff.scheduler.proto.CodeUpload;
import dev.skiff.scheduler.proto.ContainersResponse;
import dev.skiff.scheduler.proto.ControlGrpc;
import dev.skiff.scheduler.proto.DeployRequest;
import dev.skiff.scheduler.proto.DeployResponse;
import dev.skiff.scheduler.proto.FunctionsResponse;
import dev.skiff.scheduler.proto.GetRequest;
import dev.skiff.scheduler.proto.IndexedInput;
import dev.skiff.scheduler.proto.IndexedResult;
import dev.skiff.scheduler.proto.ListRequest;
import dev.skiff.scheduler.proto.LogLine;
import dev.skiff.scheduler.proto.LogsRequest;
import dev.skiff.scheduler.proto.MapInput;
import dev.skiff.scheduler.proto.MapOutput;
import dev.skiff.scheduler.proto.PayloadChunk;
import dev.skiff.scheduler.proto.PayloadRef;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.SecretRequest;
import dev.skiff.scheduler.proto.SecretsResponse;
import dev.skiff.scheduler.proto.SpawnRequest;
import dev.skiff.scheduler.proto.SpawnResponse;
import dev.skiff.scheduler.proto.StopAppRequest;
import dev.skiff.scheduler.proto.StopAppResponse;
import dev.skiff.scheduler.proto.WorkersResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The clients' service: deploy, call, spawn, get, cancel, map, logs, secrets, and what is where.
 * Failures map to statuses once, here: a bad request is INVALID_ARGUMENT, an unknown function or
 * call NOT_FOUND, an inline input over 2 MiB or a payload over 64 MiB RESOURCE_EXHAUSTED. Waiting
 * calls hold no thread: they answer when their result's future completes or their wait runs out.
 */
final class ControlService extends ControlGrpc.ControlImplBase {
  private static final Logger LOG = LoggerFactory.getLogger(ControlService.class);
  private static final long MAX_WAIT_MS = 3_600_000;
  private static final int MAP_BATCH = 1024;

  private final Scheduler scheduler;
  private final Executor accepts;
  private final PayloadStore payloads;

  /** {@code accepts} records map inputs (it may block on the disk). */
  ControlService(Scheduler scheduler, Executor accepts, PayloadStore payloads) {
    this.scheduler = scheduler;
    this.accepts = accepts;
    this.payloads = payloads;
  }

  @Override
  public StreamObserver<PayloadChunk> putPayload(StreamObserver<PayloadRef> out) {
    return payloads.put(out);
  }

  @Override
  public void getPayload(PayloadRef ref, StreamObserver<PayloadChunk> out) {
    payloads.get(ref, out);
  }

  @FunctionalInterface
  private interface Body<T> {
    T get() throws IOException;
  }

  private static <T> void answer(StreamObserver<T> out, Body<T> body) {
    T value;
    try {
      value = body.get();
    } catch (Throwable t) {
      out.onError(status(t));
      return;
    }
    out.onNext(value);
    out.onCompleted();
  }

  static StatusRuntimeException status(Throwable t) {
    if (t instanceof StatusRuntimeException s) {
      return s;
    }
    if (t instanceof IllegalArgumentException) {
      return Status.INVALID_ARGUMENT.withDescription(t.getMessage()).asRuntimeException();
    }
    LOG.error("control call failed: {}", t.toString(), t);
    return Status.INTERNAL.withDescription(t.toString()).asRuntimeException();
  }

  private static long waitMs(long asked) {
    return asked <= 0 ? MAX_WAIT_MS : Math.min(asked, MAX_WAIT_MS);
  }

  /** Answers with the result, or with the call's state so far once the wait is over. */
  private void reply(String callId, long waitMs, StreamObserver<Result> out) throws IOException {
    CompletableFuture<Result> f = scheduler.result(callId).copy();
    if (out instanceof ServerCallStreamObserver<Result> s) {
      s.setOnCancelHandler(() -> f.cancel(false));
    }
    f.completeOnTimeout(null, waitMs, TimeUnit.MILLISECONDS)
        .whenComplete(
            (r, t) -> {
              if (t instanceof java.util.concurrent.CancellationException) {
                return; // the client went away
              }
              answer(out, () -> r != null ? r : scheduler.peek(callId));
            });
  }

  @Override
  public void missingCode(CodeDigests req, StreamObserver<CodeDigests> out) {
    answer(
        out,
        () ->
            CodeDigests.newBuilder()
                .addAllDigests(scheduler.missingCode(req.getDigestsList()))
                .build());
  }

  @Override
  public void putCode(CodeUpload req, StreamObserver<CodeDigests> out) {
    answer(
        out,
        () ->
            CodeDigests.newBuilder()
                .addDigests(scheduler.putCode(req.getJar().toByteArray()))
                .build());
  }

  @Override
  public void buildImage(
      dev.skiff.scheduler.proto.BuildImageRequest req,
      StreamObserver<dev.skiff.scheduler.proto.BuildEvent> out) {
    try {
      scheduler.build(req, out);
    } catch (Throwable t) {
      out.onError(status(t));
    }
  }

  @Override
  public void stopApp(StopAppRequest req, StreamObserver<StopAppResponse> out) {
    answer(
        out,
        () -> StopAppResponse.newBuilder().addAllStopped(scheduler.stopApp(req.getApp())).build());
  }

  @Override
  public void deploy(DeployRequest req, StreamObserver<DeployResponse> out) {
    answer(out, () -> scheduler.deploy(req.getSpec(), req.getCode().toByteArray()));
  }

  @Override
  public void call(CallRequest req, StreamObserver<Result> out) {
    try {
      String id = scheduler.submit(req.getFunctionId(), List.of(req.getInput())).get(0);
      reply(id, waitMs(req.getWaitMs()), out);
    } catch (Throwable t) {
      out.onError(status(t));
    }
  }

  @Override
  public void spawn(SpawnRequest req, StreamObserver<SpawnResponse> out) {
    answer(
        out,
        () ->
            SpawnResponse.newBuilder()
                .setCallId(scheduler.submit(req.getFunctionId(), List.of(req.getInput())).get(0))
                .build());
  }

  @Override
  public void get(GetRequest req, StreamObserver<Result> out) {
    try {
      reply(req.getCallId(), Math.max(0, Math.min(req.getWaitMs(), MAX_WAIT_MS)), out);
    } catch (Throwable t) {
      out.onError(status(t));
    }
  }

  @Override
  public void cancel(CancelRequest req, StreamObserver<CancelResponse> out) {
    answer(
        out,
        () ->
            CancelResponse.newBuilder()
                .setCancelled(scheduler.cancel(req.getCallId(), req.getTerminateContainer()))
                .build());
  }

  /**
   * Inputs come in as the client sends them; they are recorded in batches (whatever has arrived
   * while the last batch was written), each input's call id goes back once recorded, and each
   * result as soon as it is final. The stream ends when the client has finished sending and every
   * result has gone back.
   */
  @Override
  public StreamObserver<MapInput> map(StreamObserver<MapOutput> out) {
    return new StreamObserver<>() {
      private final Object lock = new Object();
      private final List<IndexedInput> batch = new ArrayList<>();
      private final Coalescer<IndexedResult> results =
          new Coalescer<>(
              1024,
              IndexedResult::getSerializedSize,
              Payloads.BATCH_BYTES,
              rs -> send(MapOutput.newBuilder().addAllResults(rs).build()));
      private String functionId;
      private boolean flushing;
      private boolean clientDone;
      private boolean failed;
      private long outstanding;

      @Override
      public void onNext(MapInput in) {
        synchronized (lock) {
          if (failed) {
            return;
          }
          if (functionId == null) {
            functionId = in.getFunctionId();
          }
          batch.addAll(in.getInputsList());
          outstanding += in.getInputsCount();
          if (in.getInputsCount() == 0) {
            return;
          }
          if (!flushing) {
            flushing = true;
            accepts.execute(this::flush);
          }
        }
      }

      private void flush() {
        while (true) {
          List<IndexedInput> take;
          synchronized (lock) {
            if (batch.isEmpty() || failed) {
              flushing = false;
              finishIfDone();
              return;
            }
            take = new ArrayList<>(batch.subList(0, Math.min(MAP_BATCH, batch.size())));
            batch.subList(0, take.size()).clear();
          }
          List<String> ids;
          try {
            ids = scheduler.submit(functionId, take.stream().map(IndexedInput::getInput).toList());
          } catch (Throwable t) {
            fail(status(t));
            return;
          }
          MapOutput.Builder accepted = MapOutput.newBuilder();
          for (int i = 0; i < ids.size(); i++) {
            accepted.addAccepted(
                Accepted.newBuilder().setIndex(take.get(i).getIndex()).setCallId(ids.get(i)));
          }
          send(accepted.build());
          for (int i = 0; i < ids.size(); i++) {
            long index = take.get(i).getIndex();
            try {
              scheduler
                  .result(ids.get(i))
                  .whenComplete(
                      (r, t) -> {
                        if (r != null) {
                          results.add(
                              IndexedResult.newBuilder().setIndex(index).setResult(r).build());
                        }
                        synchronized (lock) {
                          outstanding--;
                          finishIfDone();
                        }
                      });
            } catch (IOException | RuntimeException e) {
              fail(status(e));
              return;
            }
          }
        }
      }

      private void send(MapOutput m) {
        synchronized (out) {
          if (!failed) {
            out.onNext(m);
          }
        }
      }

      private void fail(StatusRuntimeException e) {
        synchronized (lock) {
          if (failed) {
            return;
          }
          failed = true;
        }
        synchronized (out) {
          out.onError(e);
        }
      }

      /** Under the lock. */
      private void finishIfDone() {
        if (clientDone && outstanding == 0 && !flushing && !failed) {
          failed = true; // nothing more goes out
          synchronized (out) {
            out.onCompleted();
          }
        }
      }

      @Override
      public void onError(Throwable t) {
        synchronized (lock) {
          failed = true; // the client went away; accepted calls run on
        }
      }

      @Override
      public void onCompleted() {
        synchronized (lock) {
          clientDone = true;
          finishIfDone();
        }
      }
    };
  }

  @Override
  public void logs(LogsRequest req, StreamObserver<LogLine> out) {
    String fn = req.getFunctionId();
    String call = req.getCallId();
    if (fn.isEmpty() == call.isEmpty()) {
      out.onError(
          Status.INVALID_ARGUMENT
              .withDescription("name a function or a call")
              .asRuntimeException());
      return;
    }
    try {
      if (!fn.isEmpty()) {
        scheduler.function(fn);
      } else {
        scheduler.peek(call);
      }
    } catch (Throwable t) {
      out.onError(status(t));
      return;
    }
    ServerCallStreamObserver<LogLine> s = (ServerCallStreamObserver<LogLine>) out;
    Object lock = new Object();
    LogHub.Subscription sub;
    try {
      if (!req.getFollow()) {
        scheduler.logs(fn, call).stream()
            .filter(l -> l.getTimeMs() >= req.getSinceMs())
            .forEach(out::onNext);
        out.onCompleted();
        return;
      }
      sub =
          scheduler.followLogs(
              fn,
              call,
              line -> {
                if (line.getTimeMs() < req.getSinceMs()) {
                  return;
                }
                synchronized (lock) {
                  if (!s.isCancelled()) {
                    s.onNext(line);
                  }
                }
              });
    } catch (IOException | RuntimeException e) {
      out.onError(status(e));
      return;
    }
    s.setOnCancelHandler(sub::close);
    if (!call.isEmpty()) {
      // a call's logs end with the call (and a moment for lines still on their way)
      try {
        scheduler
            .result(call)
            .whenComplete(
                (r, t) ->
                    CompletableFuture.delayedExecutor(300, TimeUnit.MILLISECONDS)
                        .execute(
                            () -> {
                              sub.close();
                              synchronized (lock) {
                                if (!s.isCancelled()) {
                                  s.onCompleted();
                                }
                              }
                            }));
      } catch (IOException | RuntimeException e) {
        sub.close();
        out.onError(status(e));
      }
    }
  }

  @Override
  public void createSecret(SecretRequest req, StreamObserver<SecretsResponse> out) {
    answer(
        out,
        () ->
            SecretsResponse.newBuilder()
                .addAllNames(scheduler.putSecret(req.getName(), req.getValuesMap()))
                .build());
  }

  @Override
  public void secrets(ListRequest req, StreamObserver<SecretsResponse> out) {
    answer(out, () -> SecretsResponse.newBuilder().addAllNames(scheduler.secrets()).build());
  }

  @Override
  public void workers(ListRequest req, StreamObserver<WorkersResponse> out) {
    answer(out, () -> WorkersResponse.newBuilder().addAllWorkers(scheduler.workers()).build());
  }

  @Override
  public void containers(ListRequest req, StreamObserver<ContainersResponse> out) {
    answer(
        out,
        () -> ContainersResponse.newBuilder().addAllContainers(scheduler.containers()).build());
  }

  @Override
  public void functions(ListRequest req, StreamObserver<FunctionsResponse> out) {
    answer(
        out, () -> FunctionsResponse.newBuilder().addAllFunctions(scheduler.functions()).build());
  }

  @Override
  public void calls(ListRequest req, StreamObserver<CallsResponse> out) {
    answer(
        out,
        () ->
            CallsResponse.newBuilder()
                .addAllCalls(
                    scheduler.calls(
                        req.getLimit() > 0 ? Math.min(req.getLimit(), 10_000) : 50,
                        req.getFunctionId()))
                .build());
  }
}
