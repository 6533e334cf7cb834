package dev.skiff.sdk;

import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.List;

/**
 * An app's functions deployed for as long as this is open, their containers' output streamed to the
 * app's output sink. Closing it stops the functions (later calls are refused; their containers
 * drain) and the output stream.
 */
public final class AppRun implements AutoCloseable {
  private final App app;
  private final App.Deployment deployment;
  private final List<Context.CancellableContext> streams = new ArrayList<>();
  private boolean closed;

  AppRun(App app, App.Deployment deployment, long sinceMs) {
    this.app = app;
    this.deployment = deployment;
    for (String id : deployment.functions()) {
      Context.CancellableContext ctx = Context.current().withCancellation();
      streams.add(ctx);
      Thread.ofVirtual()
          .name("skiff-output-" + id)
          .start(
              () ->
                  ctx.run(
                      () -> {
                        try {
                          app.client()
                              .control()
                              .logs(
                                  id,
                                  null,
                                  true,
                                  sinceMs,
                                  l ->
                                      app.output()
                                          .accept(
                                              new OutputLine(
                                                  id, l.getCallId(), l.getLine(), l.getTimeMs())));
                        } catch (StatusRuntimeException e) {
                          // cancelled by close(), or the scheduler went away: output stops
                        }
                      }));
    }
  }

  /** What the deploy that started this run did (class path shipped, versions). */
  public App.Deployment deployment() {
    return deployment;
  }

  /** Stops the app's functions and their output. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      app.client().control().stopApp(app.name());
    } catch (StatusRuntimeException e) {
      throw app.client().translate(e, "stopping app " + app.name());
    } finally {
      streams.forEach(c -> c.cancel(null));
    }
  }
}
