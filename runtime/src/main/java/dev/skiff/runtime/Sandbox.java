package dev.skiff.runtime;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.digest.Digest;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * One sandbox on an image, made by a {@link SandboxRuntime}. {@link #close()} kills whatever still
 * runs in it and removes everything it had; after that it refuses every call.
 */
public interface Sandbox extends AutoCloseable {
  /**
   * Where a sandbox is in its life: starting; running (its processes may be started with {@link
   * #exec}); stopped (its first process ended, or it was checkpointed: nothing runs, nothing
   * starts); closed.
   */
  enum State {
    STARTING,
    RUNNING,
    STOPPED,
    CLOSED
  }

  /** How to start a process with {@link #exec}: overrides of the image's defaults. */
  record Exec(List<String> env, String workdir, String user, boolean stdin) {
    public Exec {
      env = List.copyOf(env);
    }

    public static Exec defaults() {
      return new Exec(List.of(), null, null, false);
    }

    public Exec withStdin(boolean on) {
      return new Exec(env, workdir, user, on);
    }

    public Exec withEnv(String nameEqualsValue) {
      List<String> e = new ArrayList<>(env);
      e.add(nameEqualsValue);
      return new Exec(e, workdir, user, stdin);
    }

    public Exec withUser(String u) {
      return new Exec(env, workdir, u, stdin);
    }

    public Exec withWorkdir(String dir) {
      return new Exec(env, dir, user, stdin);
    }
  }

  String id();

  /** The image as it was named. */
  ImageSpec image();

  /** The image's tag in the local store; null for a host-directory root. */
  ImageRef imageRef();

  /** The image's index digest; null for a host-directory root. */
  Digest imageDigest();

  ImageConfig imageConfig();

  SandboxOptions options();

  /** The sandbox's root as the host sees it (its read-only lower layer). */
  Path rootfs();

  State state();

  /** The sandbox's first process, for sandboxes made by run or restore; empty for warm ones. */
  Optional<SandboxProcess> main();

  /**
   * Starts another process in the running sandbox.
   *
   * @throws IllegalStateException if the sandbox is stopped or closed
   */
  SandboxProcess exec(List<String> args, Exec e) throws IOException;

  /** Sends SIGKILL to every process in the sandbox; a run sandbox then ends. */
  void kill() throws IOException;

  /**
   * Saves the sandbox's memory and processes as snapshot {@code name} of its image (replacing one
   * of that name) and stops the sandbox. For an image from a bucket the snapshot goes to the bucket
   * too.
   */
  Snapshot checkpoint(String name) throws IOException;

  /** Whether {@link SandboxOptions#timeout()} ran out and the sandbox was killed for it. */
  boolean timedOut();

  /** Kills what runs, removes the sandbox and its state. Idempotent. */
  @Override
  void close() throws IOException;
}
