package dev.skiff.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import com.github.luben.zstd.ZstdOutputStreamNoFinalizer;
import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.NoSuchImageException;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.Remotes;
import dev.skiff.casfs.store.S3Location;
import dev.skiff.casfs.util.Trees;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Where snapshots are kept: next to the image they were taken on, {@code
 * HOME/snapshots/ALG/INDEXHEX/NAME/} (runsc's checkpoint files, the OCI spec, {@code
 * snapshot.json}), and for an image from a bucket also in the bucket ({@code
 * snapshots/ALG/INDEXHEX/NAME/}), where every host of that image finds it and fetches it on its
 * first restore. Opening it needs no runsc; an image in a bucket need not be pulled to list or
 * remove its snapshots (its tag says which index it is).
 *
 * <p>Thread safe for different snapshots; one snapshot is taken by one sandbox at a time.
 */
public final class SnapshotStore {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String META = "snapshot.json";

  /** In a bucket's snapshot.json: its files and their sizes, so a fetch needs no listing. */
  private static final String FILES = "files";

  /** In a bucket's snapshot.json: "zstd" where each file is stored as FILE.zst. */
  private static final String COMPRESSION = "compression";

  /** In a bucket's snapshot.json: each file's size unpacked, which unpacking must match. */
  private static final String PLAIN = "plain";

  private static final int ZSTD_LEVEL = 3;

  private final ImageStore store;
  private final Remotes remotes;

  public SnapshotStore(ImageStore store, Remotes remotes) {
    this.store = store;
    this.remotes = remotes != null ? remotes : Remotes.fromEnvironment();
  }

  /** The local directory of an image's snapshots. */
  private Path dirOf(Digest d) {
    return store.home().resolve("snapshots").resolve(d.algorithm().label()).resolve(d.hex());
  }

  /** The bucket an image's snapshots go to too, or empty for an image of the local store. */
  private Optional<S3Location> bucketOf(ImageSpec image) throws IOException {
    return switch (image) {
      case ImageSpec.InBucket b -> Optional.of(remotes.location(b.bucketUrl()));
      case ImageSpec.Stored s -> store.remoteOf(s.ref()).map(remotes::relocate);
      case ImageSpec.HostDirectory d -> Optional.empty();
    };
  }

  private BlobStore open(S3Location where) throws IOException {
    return remotes.open(where, store.scratch());
  }

  /**
   * The index digest of an image: its local tag, or for one in a bucket not pulled here, its tag
   * there.
   */
  private Digest digestOf(ImageSpec image) throws IOException {
    ImageRef ref = refOf(image);
    Optional<Digest> local = store.resolve(ref);
    if (local.isPresent()) {
      return local.get();
    }
    if (image instanceof ImageSpec.InBucket b) {
      S3Location where = remotes.location(b.bucketUrl());
      try (BlobStore remote = open(where)) {
        return ImageStore.remoteTag(remote, where, ref);
      }
    }
    throw new NoSuchImageException(ref, null);
  }

  private static ImageRef refOf(ImageSpec image) {
    return image
        .localRef()
        .orElseThrow(
            () ->
                new IllegalArgumentException("a host directory (" + image + ") has no snapshots"));
  }

  /** The snapshots of an image, here and in its bucket, by name. */
  public List<Snapshot> list(ImageSpec image) throws IOException {
    Digest d = digestOf(image);
    Path parent = dirOf(d);
    Map<String, Snapshot> out = new TreeMap<>();
    for (Path p : children(parent)) {
      if (Files.exists(p.resolve(META))) {
        Snapshot s = read(p);
        out.put(s.name(), s);
      }
    }
    Optional<S3Location> where = bucketOf(image);
    if (where.isPresent()) {
      try (BlobStore remote = open(where.get())) {
        for (String blob : remote.list(BlobNames.snapshots(d, null))) {
          if (blob.endsWith("/" + META)) {
            Optional<byte[]> meta = remote.readAll(blob);
            if (meta.isPresent()) {
              ObjectNode m = (ObjectNode) JSON.readTree(meta.get());
              String name = m.path("name").asText();
              m.remove(FILES);
              m.remove(PLAIN);
              m.remove(COMPRESSION);
              if (!out.containsKey(name)) {
                m.put("dir", parent.resolve(name).toString());
                out.put(name, JSON.treeToValue(m, Snapshot.class));
              }
            }
          }
        }
      }
    }
    return new ArrayList<>(out.values());
  }

  /**
   * Snapshot {@code name} of an image, fetched from the image's bucket if it is only there.
   *
   * @throws NoSuchSnapshotException if there is no such snapshot
   */
  public Snapshot find(ImageSpec image, String name) throws IOException {
    Snapshot.checkName(name);
    ImageRef ref = refOf(image);
    Optional<Digest> local = store.resolve(ref);
    if (local.isPresent() && Files.exists(dirOf(local.get()).resolve(name).resolve(META))) {
      return read(dirOf(local.get()).resolve(name));
    }
    Optional<S3Location> where = bucketOf(image);
    if (where.isEmpty()) {
      if (local.isEmpty()) {
        throw new NoSuchImageException(ref, null);
      }
      throw new NoSuchSnapshotException(image, name);
    }
    // one client (one connection) for the tag and the snapshot's files
    try (BlobStore remote = open(where.get())) {
      Digest d = local.isPresent() ? local.get() : ImageStore.remoteTag(remote, where.get(), ref);
      Path p = dirOf(d).resolve(name);
      if (!Files.exists(p.resolve(META)) && !download(remote, d, name, p)) {
        throw new NoSuchSnapshotException(image, name);
      }
      return read(p);
    }
  }

  /**
   * Removes snapshot {@code name} of an image, here and from its bucket (without fetching it).
   * Returns false if it was in neither.
   */
  public boolean remove(ImageSpec image, String name) throws IOException {
    Digest d = digestOf(image);
    Path p = dirOf(d).resolve(Snapshot.checkName(name));
    boolean found = Files.exists(p);
    Trees.delete(p);
    Optional<S3Location> where = bucketOf(image);
    if (where.isPresent()) {
      try (BlobStore remote = open(where.get())) {
        // snapshot.json first: without it what is left is invisible, whatever stops us part way
        String meta = BlobNames.snapshots(d, name) + META;
        found |= remote.delete(meta);
        for (String blob : remote.list(BlobNames.snapshots(d, name))) {
          remote.delete(blob);
          found = true;
        }
      }
    }
    return found;
  }

  /** Marks a local snapshot used now (see {@link #sweepLocal}). */
  public void touch(Snapshot s) throws IOException {
    if (Files.isDirectory(s.dir())) {
      Files.setLastModifiedTime(s.dir(), java.nio.file.attribute.FileTime.from(Instant.now()));
    }
  }

  /**
   * Removes this host's copies of snapshots whose names start with {@code prefix}, not in {@code
   * keep}, last taken, fetched or {@linkplain #touch used} before {@code usedBefore}; copies in
   * buckets stay. Returns how many were removed.
   */
  public int sweepLocal(Instant usedBefore, java.util.Set<String> keep, String prefix)
      throws IOException {
    Path root = store.home().resolve("snapshots");
    if (!Files.isDirectory(root)) {
      return 0;
    }
    int removed = 0;
    try (Stream<Path> walk = Files.walk(root, 3)) {
      for (Path p : walk.toList()) {
        String name = p.getFileName().toString();
        if (root.relativize(p).getNameCount() == 3
            && name.startsWith(prefix)
            && !keep.contains(name)
            && Files.isDirectory(p)
            && Files.getLastModifiedTime(p).toInstant().isBefore(usedBefore)) {
          Trees.delete(p);
          removed++;
        }
      }
    }
    return removed;
  }

  /** Writes runsc's checkpoint files into a directory handed to {@link #take}. */
  interface Checkpointer {
    void checkpoint(Path imageDir) throws IOException;
  }

  /**
   * Takes snapshot {@code name} (replacing one of that name) of a sandbox on image {@code image}
   * (index {@code d}) that ran {@code command} with {@code spec}; for an image from a bucket it is
   * stored in the bucket too, and {@code stored} is told where.
   */
  Snapshot take(
      ImageSpec image,
      Digest d,
      String name,
      List<String> command,
      Path spec,
      Runsc runsc,
      Checkpointer c,
      RuntimeListener listener)
      throws IOException {
    Snapshot.checkName(name);
    Path parent = Files.createDirectories(dirOf(d));
    Path tmp = Files.createTempDirectory(parent, ".taking-");
    Snapshot s;
    try {
      c.checkpoint(Files.createDirectory(tmp.resolve("checkpoint")));
      Files.copy(spec, tmp.resolve("config.json"));
      s =
          new Snapshot(
              name,
              image.toString(),
              d.toString(),
              command,
              Instant.now().toString(),
              runsc.version(),
              runsc.platform().flag(),
              parent.resolve(name));
      ObjectNode meta = JSON.valueToTree(s);
      meta.remove("dir");
      JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.resolve(META).toFile(), meta);
      Path old = null;
      if (Files.exists(s.dir())) {
        old = parent.resolve(".replaced-" + name + "-" + System.nanoTime());
        Files.move(s.dir(), old, StandardCopyOption.ATOMIC_MOVE);
      }
      Files.move(tmp, s.dir(), StandardCopyOption.ATOMIC_MOVE);
      if (old != null) {
        Trees.delete(old);
      }
    } finally {
      Trees.delete(tmp);
    }
    Optional<S3Location> where = bucketOf(image);
    if (where.isPresent()) {
      try (BlobStore remote = open(where.get())) {
        upload(s, d, remote);
        listener.event(
            new RuntimeEvent.SnapshotStored(
                name, image.localRef().orElseThrow(), remote.describe()));
      }
    }
    return s;
  }

  /**
   * Copies a snapshot to a bucket: the checkpoint files and the spec first, snapshot.json last (a
   * snapshot without it is incomplete and invisible).
   */
  private void upload(Snapshot s, Digest d, BlobStore remote) throws IOException {
    String prefix = BlobNames.snapshots(d, s.name());
    ObjectNode meta = (ObjectNode) JSON.readTree(s.dir().resolve(META).toFile());
    ObjectNode sizes = meta.putObject(FILES);
    ObjectNode plain = meta.putObject(PLAIN);
    meta.put(COMPRESSION, "zstd");
    List<String> rels = new ArrayList<>();
    try (Stream<Path> files = Files.list(s.checkpointDir())) {
      files.sorted().forEach(f -> rels.add("checkpoint/" + f.getFileName()));
    }
    rels.add("config.json");
    for (String rel : rels) {
      // memory pages compress about 3 to 1: a first restore elsewhere moves a third
      Path z = Files.createTempFile(store.scratch(), "snapshot-", ".zst");
      try {
        try (var in = Files.newInputStream(s.dir().resolve(rel));
            var out = new ZstdOutputStreamNoFinalizer(Files.newOutputStream(z), ZSTD_LEVEL)) {
          in.transferTo(out);
        }
        remote.putFile(prefix + rel + ".zst", z);
        sizes.put(rel, Files.size(z));
        plain.put(rel, Files.size(s.dir().resolve(rel)));
      } finally {
        Files.deleteIfExists(z);
      }
    }
    remote.put(
        prefix + META,
        new java.io.ByteArrayInputStream(
            JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(meta)));
  }

  /**
   * Fetches snapshot {@code name} of image {@code d} from a bucket into {@code to}; false if
   * absent.
   */
  private static boolean download(BlobStore remote, Digest d, String name, Path to)
      throws IOException {
    String prefix = BlobNames.snapshots(d, name);
    Optional<byte[]> meta = remote.readAll(prefix + META);
    if (meta.isEmpty()) {
      return false;
    }
    ObjectNode m = (ObjectNode) JSON.readTree(meta.get());
    // What to fetch and how large: from snapshot.json (no listing, no HEADs), or for a snapshot
    // stored before it said so, from the bucket.
    Map<String, Long> files = new TreeMap<>();
    Map<String, Long> plainSizes = new TreeMap<>();
    boolean zstd = "zstd".equals(m.path(COMPRESSION).asText());
    if (m.has(FILES)) {
      m.get(FILES).properties().forEach(e -> files.put(e.getKey(), e.getValue().asLong(-1)));
      m.path(PLAIN).properties().forEach(e -> plainSizes.put(e.getKey(), e.getValue().asLong(-1)));
    } else {
      for (String blob : remote.list(prefix + "checkpoint/")) {
        String rel = blob.substring(prefix.length());
        files.put(rel, remote.size(blob).orElseThrow(() -> vanished(blob)));
      }
      files.put(
          "config.json",
          remote.size(prefix + "config.json").orElseThrow(() -> vanished("config.json")));
    }
    m.remove(FILES);
    m.remove(PLAIN);
    m.remove(COMPRESSION);
    // what a bucket's snapshot.json claims is checked before anything is fetched
    long total = 0;
    for (var e : files.entrySet()) {
      long plainSize = plainSizes.getOrDefault(e.getKey(), 0L);
      if (e.getValue() < 0 || e.getValue() > MAX_FILE || plainSize < 0 || plainSize > MAX_FILE) {
        throw new IOException(
            "snapshot "
                + name
                + " in "
                + remote.describe()
                + " names a file "
                + e.getKey()
                + " of a size no snapshot has");
      }
      total += e.getValue();
    }
    if (total > MAX_FILE) {
      throw new IOException(
          "snapshot "
              + name
              + " in "
              + remote.describe()
              + " is over "
              + (MAX_FILE >> 30)
              + " GiB");
    }
    Files.createDirectories(to.getParent());
    Path tmp = Files.createTempDirectory(to.getParent(), ".fetching-");
    try {
      Files.createDirectory(tmp.resolve("checkpoint"));
      fetchAll(remote, prefix, files, zstd ? ".zst" : "", plainSizes, tmp);
      JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.resolve(META).toFile(), m);
      try {
        Files.move(tmp, to, StandardCopyOption.ATOMIC_MOVE);
      } catch (java.nio.file.FileAlreadyExistsException
          | java.nio.file.DirectoryNotEmptyException e) {
        // another process fetched it first: theirs serves
      }
    } finally {
      Trees.delete(tmp);
    }
    return true;
  }

  /** Waits for every task; the first failure cancels the rest and is thrown. */
  private static void awaitAll(List<java.util.concurrent.Future<?>> tasks) throws IOException {
    for (var t : tasks) {
      try {
        t.get();
      } catch (java.util.concurrent.ExecutionException e) {
        tasks.forEach(x -> x.cancel(true));
        throw e.getCause() instanceof IOException io
            ? io
            : new IOException("fetching a snapshot: " + e.getCause(), e.getCause());
      } catch (InterruptedException e) {
        tasks.forEach(x -> x.cancel(true));
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("fetching a snapshot");
      }
    }
  }

  private static IOException vanished(String blob) {
    return new IOException("snapshot blob " + blob + " vanished");
  }

  /** Ranges of a snapshot's files fetched at once (each up to {@link #RANGE}). */
  private static final int PARALLEL = 8;

  private static final int RANGE = 8 << 20;

  /** The most any snapshot file, or a whole snapshot, may be (and the most one unpacks to). */
  private static final long MAX_FILE = 256L << 30;

  /**
   * Fetches {@code files} (paths under {@code prefix}, with their sizes) into {@code dir}, their
   * ranges {@link #PARALLEL} at a time: a snapshot's round trips overlap, and a large one moves at
   * the bandwidth of several connections.
   */
  private static void fetchAll(
      BlobStore remote,
      String prefix,
      Map<String, Long> files,
      String suffix,
      Map<String, Long> plainSizes,
      Path dir)
      throws IOException {
    Map<String, FileChannel> out = new TreeMap<>();
    java.util.concurrent.Semaphore slots = new java.util.concurrent.Semaphore(PARALLEL);
    List<java.util.concurrent.Future<?>> parts = new ArrayList<>();
    try (var pool = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
      for (Map.Entry<String, Long> f : files.entrySet()) {
        String rel = f.getKey();
        Path file = dir.resolve(rel).normalize();
        if (!file.startsWith(dir) || rel.contains("..")) {
          throw new IOException("snapshot file name " + rel + " leaves its directory");
        }
        Path fetched = suffix.isEmpty() ? file : file.resolveSibling(file.getFileName() + suffix);
        FileChannel ch =
            FileChannel.open(
                fetched,
                StandardOpenOption.CREATE_NEW,
                StandardOpenOption.READ,
                StandardOpenOption.WRITE);
        out.put(rel, ch);
        long size = f.getValue();
        for (long off = 0; off < size; off += RANGE) {
          long at = off;
          int len = (int) Math.min(RANGE, size - off);
          try {
            slots.acquire(); // at most PARALLEL ranges on their way at once
          } catch (InterruptedException e) {
            parts.forEach(x -> x.cancel(true));
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("fetching a snapshot");
          }
          parts.add(
              pool.submit(
                  () -> {
                    try {
                      ByteBuffer b = remote.readFully(prefix + rel + suffix, at, len);
                      for (long pos = at; b.hasRemaining(); ) {
                        pos += ch.write(b, pos);
                      }
                    } finally {
                      slots.release();
                    }
                    return null;
                  }));
        }
      }
      awaitAll(parts);
      if (!suffix.isEmpty()) { // each file unpacked beside its compressed copy, at once
        List<java.util.concurrent.Future<?>> unpacked = new ArrayList<>();
        for (Map.Entry<String, FileChannel> e : out.entrySet()) {
          Path file = dir.resolve(e.getKey());
          FileChannel ch = e.getValue();
          long want = plainSizes.getOrDefault(e.getKey(), -1L);
          unpacked.add(
              pool.submit(
                  () -> {
                    ch.position(0);
                    long limit = want >= 0 ? want : MAX_FILE;
                    long wrote;
                    try (var in =
                            new ZstdInputStreamNoFinalizer(
                                java.nio.channels.Channels.newInputStream(ch));
                        var o = Files.newOutputStream(file, StandardOpenOption.CREATE_NEW)) {
                      // never more than the file is said to be: a small blob cannot fill a disk
                      wrote =
                          in.transferTo(
                              new java.io.OutputStream() {
                                long n;

                                @Override
                                public void write(int b) throws IOException {
                                  write(new byte[] {(byte) b}, 0, 1);
                                }

                                @Override
                                public void write(byte[] b, int off, int len) throws IOException {
                                  n += len;
                                  if (n > limit) {
                                    throw new IOException(
                                        "snapshot file "
                                            + e.getKey()
                                            + " unpacks to over "
                                            + limit
                                            + " bytes");
                                  }
                                  o.write(b, off, len);
                                }
                              });
                    }
                    if (want >= 0 && wrote != want) {
                      throw new IOException(
                          "snapshot file "
                              + e.getKey()
                              + " unpacks to "
                              + wrote
                              + " bytes, not "
                              + want);
                    }
                    Files.delete(file.resolveSibling(file.getFileName() + suffix));
                    return null;
                  }));
        }
        awaitAll(unpacked);
      }
    } finally {
      for (FileChannel ch : out.values()) {
        ch.close();
      }
    }
  }

  private static Snapshot read(Path p) throws IOException {
    ObjectNode meta = (ObjectNode) JSON.readTree(p.resolve(META).toFile());
    meta.put("dir", p.toString());
    return JSON.treeToValue(meta, Snapshot.class);
  }

  private static List<Path> children(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> !p.getFileName().toString().startsWith(".")).sorted().toList();
    }
  }
}
