package dev.skiff.casfs.fuse;

import dev.skiff.casfs.fs.ImageFileSystem;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An image mounted read-only through FUSE.
 *
 * <p>Uses libfuse3's low-level session API with the receive loop run on Java threads: each thread
 * calls {@code fuse_session_receive_buf} then {@code fuse_session_process_buf}, so callbacks come
 * back into the JVM on a thread that is already attached. (libfuse's own multithreaded loop calls
 * in from native threads, which the JVM attaches and detaches per call; that cost was measured here
 * at 2-3x on cold operations.) A slow chunk fetch holds only its own thread.
 *
 * <p>Closing unmounts (lazily), waits for the loop threads, and frees the session. An unmount from
 * outside ({@code skiff umount}, {@code fusermount3 -u}) ends the loops too; {@link
 * #awaitUnmounted} returns then. A mount left by a killed process is found and cleared when the
 * same directory is mounted again.
 */
public final class FuseMount implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(FuseMount.class);

  private enum State {
    MOUNTED,
    CLOSED
  }

  /**
   * Mount settings. {@code cacheSeconds} bounds entry, attribute and negative caching in the
   * kernel.
   */
  public record Options(
      int threads, double cacheSeconds, String fsName, int readAheadKb, boolean debug) {
    public static Options defaults() {
      return new Options(8, 86400, "skiff", 4096, false);
    }

    public Options withThreads(int n) {
      return new Options(n, cacheSeconds, fsName, readAheadKb, debug);
    }

    public Options withFsName(String name) {
      return new Options(threads, cacheSeconds, name, readAheadKb, debug);
    }
  }

  private static volatile LibFuse lib;

  private final Path mountpoint;
  private final LibFuse fuse;
  private final Pointer session;
  private final CasFuse adapter; // holds the callbacks libfuse calls: must stay reachable
  private final List<Object> argv; // the session's arguments: reachable while it lives
  private final List<Thread> loops = new ArrayList<>();
  private volatile long connection;
  private volatile State state = State.MOUNTED;

  private FuseMount(
      Path mountpoint, LibFuse fuse, Pointer session, CasFuse adapter, List<Object> argv) {
    this.mountpoint = mountpoint;
    this.fuse = fuse;
    this.session = session;
    this.adapter = adapter;
    this.argv = argv;
  }

  static synchronized LibFuse library() {
    if (lib == null) {
      try {
        lib =
            LibraryLoader.create(LibFuse.class)
                .search("/usr/lib/x86_64-linux-gnu")
                .search("/lib/x86_64-linux-gnu")
                .search("/usr/lib/aarch64-linux-gnu")
                .load("fuse3");
      } catch (UnsatisfiedLinkError e) {
        throw new IllegalStateException(
            "libfuse3 not found: install it (Debian: apt-get install fuse3 libfuse3-3)", e);
      }
    }
    return lib;
  }

  /**
   * Mounts {@code fs} at {@code mountpoint}, first clearing a stale mount a killed process left
   * there. Fails if the directory is missing or already has a live mount.
   */
  public static FuseMount mount(Path mountpoint, ImageFileSystem fs, Options options)
      throws IOException {
    Path mp = mountpoint.toAbsolutePath().normalize();
    MountTable.MountEntry existing = MountTable.fuseMountAt(mp);
    if (existing != null) {
      if (MountTable.isStale(mp)) {
        LOG.warn(
            "{} held a stale FUSE mount ({}) left by a process that died; clearing it",
            mp,
            existing.source());
        MountTable.unmount(mp);
      } else {
        throw new IOException(
            mp + " is already mounted (" + existing.source() + "); unmount it first");
      }
    }
    if (!Files.isDirectory(mp)) {
      throw new IOException("mountpoint " + mp + " is not a directory");
    }
    if (!Files.exists(Path.of("/dev/fuse"))) {
      throw new IOException("/dev/fuse is missing: this kernel or container has no FUSE");
    }
    LibFuse fuse = library();
    Runtime rt = Runtime.getRuntime(fuse);
    CasFuse adapter = new CasFuse(fuse, rt, fs, options.cacheSeconds());
    boolean root = "root".equals(System.getProperty("user.name"));
    String opts =
        "ro,default_permissions,fsname="
            + options.fsName().replace(',', '_')
            + ",subtype=casfs"
            + (root ? ",allow_other" : "");
    List<String> argv = new ArrayList<>(List.of("skiff", "-o", opts));
    if (options.debug()) {
      argv.add("-d");
    }
    List<Object> keep = new ArrayList<>();
    Pointer args = fuseArgs(rt, argv, keep);
    Pointer ops = adapter.ops();
    Pointer se = fuse.fuse_session_new(args, ops, FuseStructs.OPS_COUNT * 8L, null);
    if (se == null) {
      throw new IOException("fuse_session_new failed (bad mount options: " + opts + ")");
    }
    if (fuse.fuse_session_mount(se, mp.toString()) != 0) {
      fuse.fuse_session_destroy(se);
      throw new IOException(
          "cannot mount at " + mp + " (is /dev/fuse usable, and fusermount3 installed?)");
    }
    FuseMount m = new FuseMount(mp, fuse, se, adapter, keep);
    m.start(Math.max(1, options.threads()));
    try {
      // Only now: a stat of the mountpoint is answered by the loop threads.
      m.connection = (Long) Files.getAttribute(mp, "unix:dev");
    } catch (IOException | RuntimeException e) {
      LOG.debug("cannot stat new mount {}: {}", mp, e.toString());
    }
    m.tuneReadAhead(options.readAheadKb());
    return m;
  }

  private static Pointer fuseArgs(Runtime rt, List<String> argv, List<Object> keep) {
    Pointer arr = Memory.allocateDirect(rt, 8L * (argv.size() + 1));
    for (int i = 0; i < argv.size(); i++) {
      byte[] s = argv.get(i).getBytes(StandardCharsets.UTF_8);
      Pointer p = Memory.allocateDirect(rt, s.length + 1);
      p.put(0, s, 0, s.length);
      p.putByte(s.length, (byte) 0);
      arr.putPointer(8L * i, p);
      keep.add(p);
    }
    arr.putPointer(8L * argv.size(), null);
    Pointer args = Memory.allocateDirect(rt, FuseStructs.ARGS_SIZE);
    args.setMemory(0, FuseStructs.ARGS_SIZE, (byte) 0);
    args.putInt(0, argv.size());
    args.putPointer(8, arr);
    // Keep argv reachable while the session lives: libfuse may keep pointers into it.
    keep.add(arr);
    keep.add(args);
    return args;
  }

  private void start(int threads) {
    Runtime rt = Runtime.getRuntime(fuse);
    for (int i = 0; i < threads; i++) {
      Thread t = new Thread(() -> loop(rt), "casfs-fuse-" + i);
      t.setDaemon(true);
      loops.add(t);
      t.start();
    }
  }

  private void loop(Runtime rt) {
    Pointer buf = Memory.allocateDirect(rt, FuseStructs.BUF_SIZE);
    buf.setMemory(0, FuseStructs.BUF_SIZE, (byte) 0);
    while (fuse.fuse_session_exited(session) == 0) {
      int res = fuse.fuse_session_receive_buf(session, buf);
      if (res == -Errno.EINTR || res == -Errno.EAGAIN) {
        continue;
      }
      if (res <= 0) {
        if (res < 0 && res != -Errno.ENODEV) {
          LOG.warn("FUSE session at {} ended: error {}", mountpoint, -res);
        }
        fuse.fuse_session_exit(session);
        break;
      }
      fuse.fuse_session_process_buf(session, buf);
    }
  }

  /** Raises the kernel read-ahead window of this mount (root only; best effort). */
  private void tuneReadAhead(int kb) {
    if (connection == 0 || kb <= 0) {
      return;
    }
    long major = ((connection >> 8) & 0xfff) | ((connection >>> 32) & ~0xfffL);
    long minor = (connection & 0xff) | ((connection >>> 12) & ~0xffL);
    Path ra = Path.of("/sys/class/bdi/" + major + ":" + minor + "/read_ahead_kb");
    try {
      Files.writeString(ra, Integer.toString(kb));
    } catch (IOException e) {
      LOG.debug("cannot set {}: {}", ra, e.toString());
    }
  }

  public Path mountpoint() {
    return mountpoint;
  }

  public boolean isMounted() {
    return state == State.MOUNTED && loops.stream().anyMatch(Thread::isAlive);
  }

  /** Blocks until the filesystem is unmounted (by {@link #close} or from outside). */
  public void awaitUnmounted() throws InterruptedException {
    for (Thread t : loops) {
      t.join();
    }
  }

  /** Unmounts and frees the session. Idempotent. */
  @Override
  public synchronized void close() throws IOException {
    if (state == State.CLOSED) {
      return;
    }
    state = State.CLOSED;
    IOException failure = null;
    if (loops.stream().anyMatch(Thread::isAlive)) {
      try {
        MountTable.unmount(mountpoint);
      } catch (IOException e) {
        failure = e;
      }
    }
    if (!joinLoops(TimeUnit.SECONDS.toMillis(5))) {
      abortConnection();
      joinLoops(TimeUnit.SECONDS.toMillis(5));
    }
    if (loops.stream().noneMatch(Thread::isAlive)) {
      fuse.fuse_session_destroy(session);
    } else {
      LOG.warn("FUSE loop threads for {} did not stop; leaving the session allocated", mountpoint);
    }
    if (failure != null) {
      throw failure;
    }
  }

  private boolean joinLoops(long millis) {
    long deadline = System.currentTimeMillis() + millis;
    for (Thread t : loops) {
      long left = deadline - System.currentTimeMillis();
      if (left > 0) {
        try {
          t.join(left);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return false;
        }
      }
    }
    return loops.stream().noneMatch(Thread::isAlive);
  }

  private void abortConnection() {
    long minor = (connection & 0xff) | ((connection >>> 12) & ~0xffL);
    Path abort = Path.of("/sys/fs/fuse/connections/" + minor + "/abort");
    try {
      Files.writeString(abort, "1");
    } catch (IOException e) {
      LOG.debug("cannot abort FUSE connection {}: {}", minor, e.toString());
    }
  }
}
