package dev.skiff.casfs;

import com.github.luben.zstd.Zstd;
import dev.skiff.api.ImageRef;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.index.DamagedIndexException;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.S3Location;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Images to and from a remote store (a bucket): push sends what the bucket lacks and the tag last;
 * pull fetches the tag and the index only, and the chunks stay remote. The index travels
 * zstd-compressed and is checked against its digest when it arrives.
 */
final class Transfers {
  private static final Logger LOG = LoggerFactory.getLogger(Transfers.class);

  private Transfers() {}

  static ImageStore.PushResult push(
      ImageStore store, ImageRef ref, BlobStore remote, ImageStore.PushProgress progress)
      throws IOException {
    Digest d = store.resolve(ref).orElseThrow(() -> new NoSuchImageException(ref, null));
    List<String> blobsToSend = new ArrayList<>();
    try (ImageIndex index = store.openIndex(d)) {
      for (String pack : index.packs()) {
        blobsToSend.add(pack);
        blobsToSend.add(BlobNames.chunkListOf(pack));
      }
    }
    blobsToSend.add(BlobNames.compressedIndex(d));
    int uploaded = 0;
    int skipped = 0;
    long bytes = 0;
    Path compressed = Files.createTempFile(store.scratch(), "push-", ".index.zst");
    try {
      for (String name : blobsToSend) {
        Path local;
        if (name.equals(BlobNames.compressedIndex(d))) {
          local = compressed;
          Files.write(
              compressed, Zstd.compress(Files.readAllBytes(store.indexFile(d)), INDEX_ZSTD_LEVEL));
        } else {
          local =
              store
                  .blobs()
                  .localFile(name)
                  .orElseThrow(
                      () ->
                          new IOException(
                              "blob "
                                  + name
                                  + " of "
                                  + ref
                                  + " is not in the local store (was the image pulled, not imported?)"));
        }
        long size = Files.size(local);
        if (remote.size(name).map(r -> r == size).orElse(false)) {
          skipped++;
          progress.blob(name, size, false);
          continue;
        }
        remote.putFile(name, local);
        uploaded++;
        bytes += size;
        progress.blob(name, size, true);
      }
    } finally {
      Files.deleteIfExists(compressed);
    }
    TagDocument tag = new TagDocument(d, Instant.now(), "", 0, 0, null);
    remote.put(BlobNames.ref(ref.name(), ref.tag()), new ByteArrayInputStream(tag.toJson(true)));
    return new ImageStore.PushResult(d, uploaded, skipped, bytes);
  }

  /**
   * zstd level of the index as pushed: it crosses the network before any file of a lazy start, and
   * is compressed once per push (a Debian image's 2.2 MB index: 548 KB at level 3, 474 KB at 19).
   */
  private static final int INDEX_ZSTD_LEVEL = 19;

  /**
   * Uncompressed indexes beyond this are refused: a bound on what a bucket can make a pull
   * allocate.
   */
  private static final long MAX_INDEX_BYTES = 1L << 30;

  /**
   * An index from a bucket: the compressed blob, or the plain one that older versions pushed (one
   * more round trip, only for those). Empty if the bucket has neither.
   */
  private static Optional<byte[]> fetchIndex(BlobStore remote, Digest d) throws IOException {
    Optional<byte[]> z = remote.readAll(BlobNames.compressedIndex(d));
    if (z.isEmpty()) {
      return remote.readAll(BlobNames.index(d));
    }
    long size = Zstd.getFrameContentSize(z.get());
    if (size < 0 || size > MAX_INDEX_BYTES) {
      throw new IOException(
          "compressed index " + d.shortHex() + " does not say a plausible size (" + size + ")");
    }
    try {
      return Optional.of(Zstd.decompress(z.get(), (int) size));
    } catch (RuntimeException e) {
      throw new IOException(
          "compressed index " + d.shortHex() + " does not decompress: " + e.getMessage(), e);
    }
  }

  /** The index digest a tag in a remote store points at (one GET). */
  static Digest remoteTag(BlobStore remote, S3Location where, ImageRef ref) throws IOException {
    byte[] doc =
        remote
            .readAll(BlobNames.ref(ref.name(), ref.tag()))
            .orElseThrow(() -> new NoSuchImageException(ref, where.url()));
    return TagDocument.parse(ref, doc).index();
  }

  /** Pulls the index {@code d} that {@code ref} names in {@code remote} and tags it here. */
  static void pull(ImageStore store, BlobStore remote, S3Location where, ImageRef ref, Digest d)
      throws IOException {
    fetchIndexInto(store, remote, where, ref, d);
    store.writeTag(ref, new TagDocument(d, Instant.now(), where.url() + "/" + ref, 0, 0, where));
  }

  /** Bytes per ranged read of a pack being fetched whole. */
  private static final int FETCH_RANGE = 8 << 20;

  /**
   * Fetches image {@code d} whole from {@code remote}: its index and every pack (with its chunk
   * list) this store lacks, and tags it {@code ref} as an image of this store (reads never go to
   * the bucket). Every chunk list is checked against the digest its pack is named by and every
   * chunk against its digest. Packs come down four at a time into scratch; only moving them in, the
   * catalog and the tag are done under the writer lock, so that a collection never takes a pack
   * before its tag is written and is never kept waiting on the network.
   */
  static long fetch(ImageStore store, BlobStore remote, S3Location where, ImageRef ref, Digest d)
      throws IOException {
    fetchIndexInto(store, remote, where, ref, d);
    List<String> missing = new ArrayList<>();
    try (ImageIndex index = store.openIndex(d)) {
      for (String pack : index.packs()) {
        if (!hasPack(store, pack)) {
          missing.add(pack);
        }
      }
    }
    // Every pack fetched, also by fetches still running when another fails: their files go too.
    List<FetchedPack> got = new java.util.concurrent.CopyOnWriteArrayList<>();
    try {
      try (var pool = java.util.concurrent.Executors.newFixedThreadPool(4)) {
        List<java.util.concurrent.Future<?>> pending = new ArrayList<>();
        for (String pack : missing) {
          pending.add(pool.submit(() -> got.add(fetchPack(store, remote, where, pack))));
        }
        for (var f : pending) {
          try {
            f.get();
          } catch (java.util.concurrent.ExecutionException e) {
            pool.shutdownNow();
            throw e.getCause() instanceof IOException io
                ? io
                : new IOException(e.getCause().toString(), e.getCause());
          } catch (InterruptedException e) {
            pool.shutdownNow();
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("fetch of " + ref + " interrupted");
          }
        }
      }
      return store.locked(
          () -> {
            long bytes = 0;
            for (FetchedPack p : got) {
              if (!hasPack(store, p.name())) { // another process may have brought it meanwhile
                store.blobs().putFile(p.name(), p.file());
                store.blobs().putFile(BlobNames.chunkListOf(p.name()), p.list());
                store.catalog().addAll(p.chunks());
                bytes += p.size();
              }
            }
            // The index again: a collection may have taken it while it had no tag.
            fetchIndexInto(store, remote, where, ref, d);
            store.writeTag(ref, TagDocument.local(d, where.url() + "/" + ref, bytes, 0));
            return bytes;
          });
    } finally {
      for (FetchedPack p : got) {
        Files.deleteIfExists(p.file());
        Files.deleteIfExists(p.list());
      }
    }
  }

  private static boolean hasPack(ImageStore store, String pack) {
    return store.blobs().localFile(pack).isPresent()
        && store.blobs().localFile(BlobNames.chunkListOf(pack)).isPresent();
  }

  /** A pack and its chunk list fetched into scratch files, checked. */
  private record FetchedPack(
      String name,
      Path file,
      Path list,
      long size,
      List<dev.skiff.casfs.pack.ChunkLocation> chunks) {}

  /** One pack and its chunk list into scratch files, every chunk checked against its digest. */
  private static FetchedPack fetchPack(
      ImageStore store, BlobStore remote, S3Location where, String pack) throws IOException {
    String listName = BlobNames.chunkListOf(pack);
    byte[] list =
        remote
            .readAll(listName)
            .orElseThrow(() -> new IOException(where + " has no chunk list for pack " + pack));
    Digest named =
        BlobNames.packDigest(pack).orElseThrow(() -> new IOException("not a pack name: " + pack));
    if (!named.algorithm().digest(list).equals(named)) {
      throw new IOException(
          "the chunk list of pack " + pack + " in " + where + " does not match its name");
    }
    List<dev.skiff.casfs.pack.ChunkLocation> chunks =
        dev.skiff.casfs.pack.PackWriter.decodeIndex(pack, list);
    long size =
        remote
            .size(pack)
            .orElseThrow(() -> new IOException(where + " has no pack " + pack + " (lost?)"));
    for (var c : chunks) {
      if (c.offset() + c.storedLength() > size) {
        throw new IOException(
            "pack "
                + pack
                + " in "
                + where
                + " is shorter ("
                + size
                + " bytes) than its chunks say");
      }
    }
    Path file = Files.createTempFile(store.scratch(), "fetch-", ".pack");
    Path listFile = Files.createTempFile(store.scratch(), "fetch-", ".idx");
    try {
      try (var out =
          java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate((int) Math.min(FETCH_RANGE, size));
        for (long off = 0; off < size; ) {
          buf.clear();
          int want = (int) Math.min(buf.capacity(), size - off);
          buf.limit(want);
          int n = remote.read(pack, off, want, buf);
          if (n <= 0) {
            throw new IOException("pack " + pack + " in " + where + " ended at " + off);
          }
          buf.flip();
          while (buf.hasRemaining()) {
            out.write(buf);
          }
          off += n;
        }
        out.force(false);
      }
      try (var in = java.nio.channels.FileChannel.open(file)) {
        for (var c : chunks) {
          java.nio.ByteBuffer stored = java.nio.ByteBuffer.allocate(c.storedLength());
          in.read(stored, c.offset());
          Digest got =
              c.digest().algorithm().digest(c.codec().decode(stored.array(), c.plainLength()));
          if (!got.equals(c.digest())) {
            throw new IOException(
                "chunk " + c.digest() + " of pack " + pack + " in " + where + " is corrupt");
          }
        }
      }
      Files.write(listFile, list);
      return new FetchedPack(pack, file, listFile, size, chunks);
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(file);
      Files.deleteIfExists(listFile);
      throw e;
    }
  }

  /** Fetches index {@code d} into this store unless it has it whole already. */
  private static void fetchIndexInto(
      ImageStore store, BlobStore remote, S3Location where, ImageRef ref, Digest d)
      throws IOException {
    String indexName = BlobNames.index(d);
    Optional<Path> have = store.blobs().localFile(indexName);
    if (have.isPresent()) {
      try {
        store.verifier().verify(have.get(), d);
      } catch (DamagedIndexException e) {
        LOG.warn("{}; fetching it again from {}", e.getMessage(), where);
        have = Optional.empty();
      }
    }
    if (have.isEmpty()) {
      // One GET for the whole index: it is needed whole before the mount, and a size lookup or
      // a series of ranges would each cost a round trip.
      byte[] index =
          fetchIndex(remote, d)
              .orElseThrow(
                  () ->
                      new IOException(
                          "remote tag "
                              + ref
                              + " points at index "
                              + d
                              + ", which "
                              + where
                              + " does not have"));
      Digest got = d.algorithm().digest(index);
      if (!got.equals(d)) {
        throw new IOException(
            "index fetched from " + where + " is corrupt: digest " + got + ", expected " + d);
      }
      Path tmp = Files.createTempFile(store.scratch(), "pull-", ".index");
      try {
        Files.write(tmp, index);
        store.blobs().putFile(indexName, tmp);
      } finally {
        Files.deleteIfExists(tmp);
      }
      store.verifier().remember(store.indexFile(d), d);
    }
  }
}
