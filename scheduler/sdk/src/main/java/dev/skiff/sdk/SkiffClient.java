package dev.skiff.sdk;

import dev.skiff.api.SkiffHome;
import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.client.SchedulerAddress;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.nio.file.Path;

/**
 * A connection to a Skiff scheduler, shared by the apps and functions that use it. Closing it
 * closes the connection. Thread safe.
 */
public final class SkiffClient implements AutoCloseable {
  private static SkiffClient shared;

  private final ControlClient control;
  private final String target;

  private SkiffClient(ControlClient control, String target) {
    this.control = control;
    this.target = target;
    control.channel().getState(true); // connect now, not on the first call
  }

  /**
   * The scheduler at {@code target} (HOST:PORT, or a leader and its standbys HOST:PORT,HOST:PORT)
   * with client {@code token}; TLS trusting {@code caCert} (PEM) when it is not null.
   */
  public static SkiffClient connect(String target, String token, Path caCert) {
    try {
      return new SkiffClient(ControlClient.connect(target, token, caCert), target);
    } catch (IOException e) {
      throw new SkiffException("cannot connect to the scheduler at " + target + ": " + e, e);
    }
  }

  /**
   * The scheduler this host's user would reach with the CLI: {@code $SKIFF_SCHEDULER} (with {@code
   * $SKIFF_TOKEN} and {@code $SKIFF_CA}), else the {@code skiff serve} running on the Skiff home
   * ({@code $SKIFF_HOME}, else {@code /var/lib/skiff} for root, else {@code ~/.local/share/skiff}).
   *
   * @throws SkiffException saying what to do when there is none
   */
  public static SkiffClient connect() {
    SchedulerAddress a;
    try {
      a = SchedulerAddress.find(null, SkiffHome.defaultHome());
    } catch (IOException e) {
      throw new SkiffException(e.getMessage(), e);
    }
    return connect(a.target(), a.token(), a.ca());
  }

  /** One connection for the whole process, made on first use with {@link #connect()}. */
  static synchronized SkiffClient shared() {
    if (shared == null) {
      shared = connect();
    }
    return shared;
  }

  ControlClient control() {
    return control;
  }

  private final java.util.Map<String, String> built =
      new java.util.concurrent.ConcurrentHashMap<>();

  /**
   * The name of {@code image}: its own, or for an image defined in steps, the image a worker builds
   * from them (through the scheduler, its log on stderr; once per client: the build's step cache
   * makes a later client's build of the same steps run none).
   *
   * @throws IllegalStateException if the build fails, saying at which step and why
   */
  public String build(Image image) {
    if (!image.built()) {
      return image.spec().toString();
    }
    byte[] context = image.contextZip();
    String key =
        image.dockerfile()
            + "\n"
            + (context == null ? "" : dev.skiff.scheduler.CodeBundle.digest(context));
    return built.computeIfAbsent(
        key,
        k -> {
          try {
            return control.buildImage(
                image.dockerfile(),
                context,
                false,
                line -> System.err.println("skiff build: " + line));
          } catch (StatusRuntimeException e) {
            throw translate(e, "building the image");
          }
        });
  }

  String target() {
    return target;
  }

  /** A gRPC failure as the exception a caller of the SDK expects, saying what to do. */
  RuntimeException translate(StatusRuntimeException e, String what) {
    Status s = e.getStatus();
    String why = s.getDescription() != null ? s.getDescription() : s.getCode().toString();
    return switch (s.getCode()) {
      case INVALID_ARGUMENT, OUT_OF_RANGE, RESOURCE_EXHAUSTED ->
          new IllegalArgumentException(what + ": " + why, e);
      case NOT_FOUND, FAILED_PRECONDITION -> new IllegalStateException(what + ": " + why, e);
      case CANCELLED -> {
        var c = new java.util.concurrent.CancellationException(what + ": " + why);
        c.initCause(e);
        yield c;
      }
      case UNAUTHENTICATED ->
          new SkiffException(
              what + ": the scheduler at " + target + " refused the token (set $SKIFF_TOKEN)", e);
      case UNAVAILABLE ->
          new InternalFailureException(
              what + ": cannot reach the scheduler at " + target + " (" + why + ")", e);
      default -> new InternalFailureException(what + ": " + why, e);
    };
  }

  @Override
  public void close() {
    synchronized (SkiffClient.class) {
      if (shared == this) {
        shared = null;
      }
    }
    control.close();
  }
}
