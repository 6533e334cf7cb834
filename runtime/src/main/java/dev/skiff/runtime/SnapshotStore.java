package dev.skiff.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
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
    ImageRef ref =
        image
            .localRef()
            .orElseThrow(
                () ->
                    new IllegalArgumentException(
                        "a host directory (" + image + ") has no snapshots"));
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
    Digest d = digestOf(image);
    Path p = dirOf(d).resolve(Snapshot.checkName(name));
    if (!Files.exists(p.resolve(META))) {
      Optional<S3Location> where = bucketOf(image);
      boolean fetched = false;
      if (where.isPresent()) {
        try (BlobStore remote = open(where.get())) {
          fetched = download(remote, d, name, p);
        }
      }
      if (!fetched) {
        throw new NoSuchSnapshotException(image, name);
      }
    }
    return read(p);
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
  private static void upload(Snapshot s, Digest d, BlobStore remote) throws IOException {
    String prefix = BlobNames.snapshots(d, s.name());
    try (Stream<Path> files = Files.list(s.checkpointDir())) {
      for (Path f : files.sorted().toList()) {
        remote.putFile(prefix + "checkpoint/" + f.getFileName(), f);
      }
    }
    remote.putFile(prefix + "config.json", s.dir().resolve("config.json"));
    remote.putFile(prefix + META, s.dir().resolve(META));
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
    Files.createDirectories(to.getParent());
    Path tmp = Files.createTempDirectory(to.getParent(), ".fetching-");
    try {
      Path cp = Files.createDirectory(tmp.resolve("checkpoint"));
      for (String blob : remote.list(prefix + "checkpoint/")) {
        fetch(remote, blob, cp.resolve(blob.substring(blob.lastIndexOf('/') + 1)));
      }
      fetch(remote, prefix + "config.json", tmp.resolve("config.json"));
      Files.write(tmp.resolve(META), meta.get());
      Files.move(tmp, to, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Trees.delete(tmp);
    }
    return true;
  }

  /** A blob to a file in 16 MiB ranges (checkpoints can be larger than an array). */
  private static void fetch(BlobStore remote, String blob, Path file) throws IOException {
    long size =
        remote.size(blob).orElseThrow(() -> new IOException("snapshot blob " + blob + " vanished"));
    try (FileChannel out =
        FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      for (long off = 0; off < size; off += 16 << 20) {
        ByteBuffer b = remote.readFully(blob, off, (int) Math.min(16 << 20, size - off));
        while (b.hasRemaining()) {
          out.write(b);
        }
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
