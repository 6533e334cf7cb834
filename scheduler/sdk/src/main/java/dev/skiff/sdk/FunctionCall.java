package dev.skiff.sdk;

import com.fasterxml.jackson.databind.JavaType;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.scheduler.proto.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.TimeoutException;

/**
 * A call started with {@code spawn}: its result can be fetched later, from this process or another
 * one by its id ({@link SkiffFunction#call(String)}), until the scheduler forgets it a day after it
 * finished.
 *
 * @param <O> the function's result type
 */
public final class FunctionCall<O> {
  private final SkiffClient client;
  private final String id;
  private final String function;
  private final JavaType type;

  FunctionCall(SkiffClient client, String id, String function, JavaType type) {
    this.client = client;
    this.id = id;
    this.function = function;
    this.type = type;
  }

  /** The call's id, as {@code skiff call get} and {@code skiff logs} take it. */
  public String id() {
    return id;
  }

  /** Waits for the result as long as it takes. */
  public O get() {
    while (true) {
      try {
        return get(Duration.ofMinutes(10));
      } catch (TimeoutException e) {
        // the scheduler lets one request wait so long; ask again
      }
    }
  }

  /**
   * The result, waiting at most {@code timeout}.
   *
   * @throws TimeoutException if the call has not finished by then (it goes on)
   */
  public O get(Duration timeout) throws TimeoutException {
    Result r;
    try {
      r = client.control().get(id, timeout);
    } catch (StatusRuntimeException e) {
      throw client.translate(e, "getting call " + id);
    }
    if (r.getStatus() == Status.PENDING || r.getStatus() == Status.RUNNING) {
      throw new TimeoutException(
          "call "
              + id
              + " of "
              + function
              + " is still "
              + r.getStatus().name().toLowerCase()
              + " after "
              + timeout);
    }
    return Codec.outcome(r, type, function);
  }

  /** Cancels the call if it has not finished; true if it was cancelled. */
  public boolean cancel() {
    return cancel(false);
  }

  /**
   * Cancels the call if it has not finished; with {@code terminateContainer}, a running call's
   * container is stopped too (a handler cannot be interrupted otherwise).
   */
  public boolean cancel(boolean terminateContainer) {
    try {
      return client.control().cancel(id, terminateContainer);
    } catch (StatusRuntimeException e) {
      throw client.translate(e, "cancelling call " + id);
    }
  }

  @Override
  public String toString() {
    return "call " + id + " of " + function;
  }
}
