package dev.skiff.casfs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.api.ImageRef;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.image.ImageImporter;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.image.ImportResult;
import dev.skiff.casfs.index.DamagedIndexException;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.index.IndexVerifier;
import dev.skiff.casfs.pack.ChunkCatalog;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.MeteredBlobStore;
import dev.skiff.casfs.store.S3Location;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Skiff home: the blob store (packs, indexes, refs), the chunk catalog and the settings chosen
 * when it was created. The entry point for importing, listing and opening images.
 *
 * <pre>
 * HOME/store.properties   digest algorithm, chunk size, inline limit, zstd level (fixed at creation)
 * HOME/blobs/             the embedded blob store: packs/, indexes/, refs/
 * HOME/catalog/           chunk digest -> pack range (derived; rebuilt from pack indexes if lost)
 * HOME/verified/          stamps of indexes checked against their digests (see {@link IndexVerifier})
 * HOME/tmp/PID-START.N/   scratch of one open store, removed by gc or the next import once that process is gone
 * HOME/lock               held while importing, so two imports do not interleave
 * </pre>
 *
 * Thread safe; imports are serialised across processes by the lock file.
 */
public final class ImageStore implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static final Logger LOG = LoggerFactory.getLogger(ImageStore.class);
  private static final java.util.concurrent.atomic.AtomicInteger SCRATCHES =
      new java.util.concurrent.atomic.AtomicInteger();

  private final Path home;
  private final MeteredBlobStore blobs;
  private final ImageImporter.Options options;
  private final IndexVerifier verifier;
  private ChunkCatalog catalog;
  private Path scratch;
  private List<DerivedData> derived;
  private boolean closed;

  private ImageStore(Path home, MeteredBlobStore blobs, ImageImporter.Options options) {
    this.home = home;
    this.blobs = blobs;
    this.options = options;
    this.verifier = new IndexVerifier(home.resolve("verified"));
  }

  /**
   * The default home: {@code $SKIFF_HOME}, else {@code /var/lib/skiff} for root, else {@code
   * ~/.local/share/skiff}.
   */
  public static Path defaultHome() {
    return dev.skiff.api.SkiffHome.defaultHome();
  }

  /** Opens a home, creating it with {@code creation} settings if it does not exist. */
  public static ImageStore open(Path home, ImageImporter.Options creation) throws IOException {
    Files.createDirectories(home);
    ImageImporter.Options options = StoreSettings.readOrCreate(home, creation);
    MeteredBlobStore blobs = BlobStores.metered(BlobStores.local(home.resolve("blobs")));
    return new ImageStore(home, blobs, options);
  }

  public static ImageStore open(Path home) throws IOException {
    return open(home, ImageImporter.Options.defaults());
  }

  public Path home() {
    return home;
  }

  /** The blob store, with read counters. */
  public MeteredBlobStore blobs() {
    return blobs;
  }

  public ImageImporter.Options options() {
    return options;
  }

  synchronized ChunkCatalog catalog() throws IOException {
    if (catalog == null) {
      Path dir = home.resolve("catalog");
      boolean fresh = !Files.exists(dir.resolve("data.mdb"));
      catalog = ChunkCatalog.open(dir, options.algorithm());
      if (fresh) {
        catalog.rebuild(blobs);
      }
    }
    return catalog;
  }

  /**
   * Imports an image from {@code source} (see {@link ImageImporter#importFrom}) and tags it. The
   * tag is written only after the index and every pack are stored.
   */
  public ImportResult importImage(String source, ImageRef ref, ImportProgress progress)
      throws IOException {
    return importTagged(ref, importer -> importer.importFrom(source, progress));
  }

  /**
   * Imports the image {@code source} from its registry and tags it {@code ref}: layers stream
   * straight into the store (chunks it has already are not stored again); the tag is written only
   * once all of it is stored, so a pull that fails leaves nothing tagged.
   */
  public ImportResult pullFromRegistry(
      dev.skiff.casfs.registry.RegistryRef source,
      dev.skiff.casfs.registry.RegistryClient.Options registry,
      ImageRef ref,
      ImportProgress progress)
      throws IOException {
    return importTagged(ref, importer -> importer.importFrom(source, registry, progress));
  }

  /**
   * Pushes image {@code ref} to a registry as an OCI image of one layer, tagged as {@code dest}
   * says (see {@link dev.skiff.casfs.registry.RegistryPush}).
   */
  public dev.skiff.casfs.registry.RegistryPush.Result pushToRegistry(
      ImageRef ref,
      dev.skiff.casfs.registry.RegistryRef dest,
      dev.skiff.casfs.registry.RegistryClient.Options registry)
      throws IOException {
    return dev.skiff.casfs.registry.RegistryPush.push(this, ref, dest, registry);
  }

  /**
   * Imports a build step over image {@code parent} and tags it {@code ref} (see {@link
   * ImageImporter#importOver}): the parent's files as they are, the step's changes on top.
   */
  public ImportResult importOver(
      Digest parent, Path diff, boolean overlay, byte[] config, String describe, ImageRef ref)
      throws IOException {
    return importTagged(
        ref,
        importer -> {
          try (ImageIndex base = openIndex(parent)) {
            return importer.importOver(base, diff, overlay, config, describe, ImportProgress.NONE);
          }
        });
  }

  /**
   * Tags {@code ref} an image that is image {@code base} with {@code config} as its config: a new
   * index only (see {@link ImageImporter#reconfigure}).
   */
  public ImportResult reconfigure(Digest base, byte[] config, String describe, ImageRef ref)
      throws IOException {
    return importTagged(ref, importer -> importer.reconfigure(indexFile(base), config, describe));
  }

  /** An import under the writer lock, tagged {@code ref} once its index and packs are stored. */
  private ImportResult importTagged(ImageRef ref, ImportWith body) throws IOException {
    Path tmp = scratch();
    return locked(
        () -> {
          GarbageCollector.reapScratch(
              this,
              java.time.Duration.ofMinutes(10)); // the next writer clears what killed ones left
          ImportResult r = body.run(new ImageImporter(blobs, catalog(), tmp, options));
          verifier.remember(indexFile(r.index()), r.index());
          writeTag(ref, TagDocument.local(r.index(), r.source(), r.newBytes(), r.newChunks()));
          return r;
        });
  }

  @FunctionalInterface
  private interface ImportWith {
    ImportResult run(ImageImporter importer) throws IOException;
  }

  void writeTag(ImageRef ref, TagDocument tag) throws IOException {
    blobs.put(BlobNames.ref(ref.name(), ref.tag()), new ByteArrayInputStream(tag.toJson(false)));
  }

  Path indexFile(Digest d) throws IOException {
    return blobs
        .localFile(BlobNames.index(d))
        .orElseThrow(
            () -> new IOException("image index " + d + " is missing from " + blobs.describe()));
  }

  /** Work that returns a value and may fail with an IOException. */
  @FunctionalInterface
  public interface IOCallable<T> {
    T call() throws IOException;
  }

  /**
   * Runs {@code body} holding this home's writer lock, across processes: imports, repacking and
   * garbage collection take it, so a collection never sees a pack whose index is not written yet.
   * Not reentrant.
   */
  public <T> T locked(IOCallable<T> body) throws IOException {
    try (FileChannel lockFile =
            FileChannel.open(
                home.resolve("lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock lock = lockFile.lock()) {
      return body.call();
    }
  }

  /**
   * What {@link #gc} removed (or, in a dry run, would remove) and what it kept. {@code problems}
   * says what it found damaged (unreadable tags, damaged indexes, missing packs) and what it kept
   * because of it; empty when the store is sound.
   */
  public record GcResult(
      int packs,
      long packBytes,
      int indexes,
      long indexBytes,
      Map<String, Integer> derived,
      int tags,
      int inUse,
      long scratchBytes,
      List<String> problems) {
    public GcResult {
      derived = Map.copyOf(derived);
      problems = List.copyOf(problems);
    }
  }

  /**
   * Data kept for images by the modules above (traces, snapshots): those found as {@link
   * java.util.ServiceLoader} services on the class path and those {@link #register registered}.
   */
  public synchronized List<DerivedData> derivedData() {
    if (derived == null) {
      derived = new ArrayList<>();
      ServiceLoader.load(DerivedData.class, ImageStore.class.getClassLoader())
          .forEach(derived::add);
    }
    return List.copyOf(derived);
  }

  /** Adds an owner of derived data that is not a service on the class path (tests, embedders). */
  public synchronized void register(DerivedData owner) {
    derivedData();
    if (derived.stream().noneMatch(d -> d.kind().equals(owner.kind()))) {
      derived.add(owner);
    }
  }

  /**
   * Removes what no tag needs: packs (with their chunk lists) that no tagged index points into,
   * indexes no tag names, what {@link #derivedData} keeps for removed images (traces, snapshots;
   * {@link GcResult#derived} counts them), and scratch files of processes that are gone (a killed
   * import). An index some process has mapped (a running mount of an image whose tag is gone)
   * counts as needed, with its packs, and so does every blob written less than {@code keepRecent}
   * ago (a pull writes its index before its tag without the writer lock). Damage does not stop it:
   * what a damaged tag or index might need is kept, and {@link GcResult#problems} says so. Holds
   * the writer lock throughout.
   */
  public GcResult gc(boolean dryRun, java.time.Duration keepRecent) throws IOException {
    return locked(() -> new GarbageCollector(this, keepRecent).run(dryRun));
  }

  /** What {@link #fsck} found and did. */
  public record FsckResult(
      int packs,
      long chunksVerified,
      List<String> missingPacks,
      List<String> corruptChunks,
      long chunksForgotten,
      List<String> damagedImages) {
    public FsckResult {
      missingPacks = List.copyOf(missingPacks);
      corruptChunks = List.copyOf(corruptChunks);
      damagedImages = List.copyOf(damagedImages);
    }

    public boolean clean() {
      return missingPacks.isEmpty() && corruptChunks.isEmpty() && damagedImages.isEmpty();
    }
  }

  /**
   * Checks the store: every tag readable, every index whole (hashed against its digest), every pack
   * and chunk list a catalogued chunk or a tagged image needs present, and with {@code
   * verifyChunks} every chunk of every pack read back and checked against its digest. Chunks whose
   * pack is gone or whose bytes are corrupt are forgotten by the catalog, so the next import of
   * their content stores them again instead of deduplicating against them. Holds the writer lock.
   */
  public FsckResult fsck(boolean verifyChunks) throws IOException {
    return locked(() -> new StoreChecker(this).run(verifyChunks));
  }

  /**
   * Points a tag at an index already in this store (an optimized image, say). {@code newBytes} is
   * what producing it added to the store.
   */
  public void tag(ImageRef ref, Digest index, String source, long newBytes) throws IOException {
    if (blobs.localFile(BlobNames.index(index)).isEmpty()) {
      throw new IOException("index " + index + " is not in " + home);
    }
    writeTag(ref, TagDocument.local(index, source, newBytes, 0));
  }

  /**
   * This store's own scratch directory inside the home (same filesystem as the store, so renames
   * are cheap), named after this process: what a killed process leaves there is removed by {@link
   * #gc} and by the next import once the process is gone. Removed when the store closes.
   */
  public synchronized Path scratch() throws IOException {
    if (scratch == null) {
      scratch =
          home.resolve("tmp").resolve(Owner.current().tag() + "." + SCRATCHES.incrementAndGet());
    }
    return Files.createDirectories(scratch);
  }

  /** The index digest a tag points at, if the tag exists. */
  public Optional<Digest> resolve(ImageRef ref) throws IOException {
    return readTag(ref).map(TagDocument::index);
  }

  /** The tag's document, empty if there is no such tag. */
  Optional<TagDocument> readTag(ImageRef ref) throws IOException {
    Optional<byte[]> doc = blobs.readAll(BlobNames.ref(ref.name(), ref.tag()));
    return doc.isEmpty() ? Optional.empty() : Optional.of(TagDocument.parse(ref, doc.get()));
  }

  /**
   * Every tag of this store, sorted; blob names that are not a valid image name are logged and left
   * out.
   */
  List<ImageRef> tags() throws IOException {
    List<ImageRef> out = new ArrayList<>();
    for (String name : blobs.list(BlobNames.REFS)) {
      Optional<ImageRef> ref = BlobNames.refOf(name);
      if (ref.isPresent()) {
        out.add(ref.get());
      } else {
        LOG.warn("ignoring {}: not a tag name", name);
      }
    }
    return out;
  }

  /**
   * Every tagged image, sorted by name and tag. A damaged image (unreadable tag, missing or damaged
   * index, missing packs) is listed with {@link ImageInfo#damage()} saying why; it does not stop
   * the others.
   */
  public List<ImageInfo> images() throws IOException {
    List<ImageInfo> out = new ArrayList<>();
    for (ImageRef ref : tags()) {
      try {
        info(ref).ifPresent(out::add);
      } catch (DamagedTagException e) {
        out.add(ImageInfo.damaged(ref, null, e.reason()));
      }
    }
    return out;
  }

  /**
   * What {@code skiff images} shows for one tag; a damaged image says why in {@link
   * ImageInfo#damage()}.
   */
  public Optional<ImageInfo> info(ImageRef ref) throws IOException {
    Optional<TagDocument> tag = readTag(ref);
    if (tag.isEmpty()) {
      return Optional.empty();
    }
    TagDocument t = tag.get();
    Digest d = t.index();
    if (blobs.localFile(BlobNames.index(d)).isEmpty()) {
      return Optional.of(ImageInfo.damaged(ref, d, "its index " + d.shortHex() + " is missing"));
    }
    try (ImageIndex index = openIndex(d)) {
      JsonNode stats = JSON.readTree(index.meta("stats"));
      String damage = null;
      if (t.remote() == null) {
        List<String> missing =
            index.packs().stream().filter(p -> blobs.localFile(p).isEmpty()).toList();
        if (!missing.isEmpty()) {
          damage =
              missing.size()
                  + " of its "
                  + index.packs().size()
                  + " packs are missing ("
                  + missing.get(0)
                  + (missing.size() > 1 ? ", ..." : "")
                  + ")";
        }
      }
      return Optional.of(
          new ImageInfo(
              ref,
              d,
              t.written(),
              t.source(),
              stats.path("files").asLong(),
              stats.path("logicalBytes").asLong(),
              stats.path("storedBytes").asLong(),
              t.newBytes(),
              Files.size(index.file()),
              damage));
    } catch (DamagedIndexException e) {
      return Optional.of(
          ImageInfo.damaged(ref, d, "its index " + d.shortHex() + " is damaged: " + e.reason()));
    }
  }

  /** What a push sent: blobs uploaded and skipped (the remote had them), and bytes uploaded. */
  public record PushResult(Digest index, int uploaded, int skipped, long bytes) {}

  /** Receives push progress: a line per blob. */
  @FunctionalInterface
  public interface PushProgress {
    PushProgress NONE = (name, bytes, uploaded) -> {};

    void blob(String name, long bytes, boolean uploaded);
  }

  /**
   * Uploads an image to a remote store: every pack (and its chunk list) the remote lacks, the index
   * (zstd), and the tag last, so that a remote tag never points at an incomplete image. Safe to
   * interrupt and re-run: blobs already there whole are skipped.
   */
  public PushResult push(ImageRef ref, BlobStore remote, PushProgress progress) throws IOException {
    return Transfers.push(this, ref, remote, progress);
  }

  /** The index digest a tag in a remote store points at (one GET). */
  public static Digest remoteTag(BlobStore remote, S3Location where, ImageRef ref)
      throws IOException {
    return Transfers.remoteTag(remote, where, ref);
  }

  /**
   * Fetches an image's index (only) from a remote store and tags it here, remembering where its
   * chunks live: the image is then mountable, and reads fetch chunks from {@code remote}.
   */
  public Digest pull(BlobStore remote, S3Location where, ImageRef ref) throws IOException {
    Digest d = remoteTag(remote, where, ref);
    pull(remote, where, ref, d);
    return d;
  }

  /**
   * {@link #pull(BlobStore, S3Location, ImageRef)} for a tag already resolved with {@link
   * #remoteTag}, so that a caller can fetch other things the digest names (a trace) meanwhile.
   */
  public void pull(BlobStore remote, S3Location where, ImageRef ref, Digest d) throws IOException {
    Transfers.pull(this, remote, where, ref, d);
  }

  /**
   * Fetches image {@code d} whole from a remote store and tags it {@code ref} here, as an image of
   * this store: the index and every pack this store lacks (what a build step found in a shared
   * cache needs, since the next step's import is made over its files). Returns the bytes fetched.
   */
  public long fetch(BlobStore remote, S3Location where, ImageRef ref, Digest d) throws IOException {
    return Transfers.fetch(this, remote, where, ref, d);
  }

  /** Where a pulled image's chunks live, or empty for an image whose chunks are in this store. */
  public Optional<S3Location> remoteOf(ImageRef ref) throws IOException {
    return readTag(ref).map(TagDocument::remote);
  }

  /** The disk chunk cache of this home (used for images whose chunks are remote). */
  public Path chunkCacheDir() {
    return home.resolve("cache").resolve("chunks");
  }

  /** Removes a tag (blobs stay until garbage collection). Returns false if it did not exist. */
  public boolean untag(ImageRef ref) throws IOException {
    return blobs.delete(BlobNames.ref(ref.name(), ref.tag()));
  }

  /**
   * Opens an image's index read-only, in place (the embedded store keeps it as a file), once it is
   * known to be whole: checked against its digest (see {@link IndexVerifier}), so that a damaged
   * index is a {@link DamagedIndexException}, never content.
   */
  public ImageIndex openIndex(Digest digest) throws IOException {
    Path file = indexFile(digest);
    verifier.verify(file, digest);
    return ImageIndex.open(file);
  }

  IndexVerifier verifier() {
    return verifier;
  }

  /** Opens the index a tag points at. */
  public ImageIndex openIndex(ImageRef ref) throws IOException {
    Digest d = resolve(ref).orElseThrow(() -> new NoSuchImageException(ref, null));
    return openIndex(d);
  }

  @Override
  public synchronized void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    if (catalog != null) {
      catalog.close();
    }
    blobs.close();
    if (scratch != null) {
      dev.skiff.casfs.util.Trees.delete(scratch);
    }
  }
}
