package dev.skiff.casfs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.image.ImageImporter;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.image.ImportResult;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.pack.ChunkCatalog;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.store.MeteredBlobStore;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Properties;

/**
 * A Skiff home: the blob store (packs, indexes, refs), the chunk catalog and the settings chosen
 * when it was created. The entry point for importing, listing and opening images.
 *
 * <pre>
 * HOME/store.properties   digest algorithm, chunk size, inline limit, zstd level (fixed at creation)
 * HOME/blobs/             the embedded blob store: packs/, indexes/, refs/
 * HOME/catalog/           chunk digest -> pack range (derived; rebuilt from pack indexes if lost)
 * HOME/tmp/               scratch for imports
 * HOME/lock               held while importing, so two imports do not interleave
 * </pre>
 *
 * Thread safe; imports are serialised across processes by the lock file.
 */
public final class ImageStore implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path home;
  private final MeteredBlobStore blobs;
  private final ImageImporter.Options options;
  private ChunkCatalog catalog;
  private boolean closed;

  private ImageStore(Path home, MeteredBlobStore blobs, ImageImporter.Options options) {
    this.home = home;
    this.blobs = blobs;
    this.options = options;
  }

  /**
   * The default home: {@code $SKIFF_HOME}, else {@code /var/lib/skiff} for root, else {@code
   * ~/.local/share/skiff}.
   */
  public static Path defaultHome() {
    String env = System.getenv("SKIFF_HOME");
    if (env != null && !env.isBlank()) {
      return Path.of(env);
    }
    if ("root".equals(System.getProperty("user.name"))) {
      return Path.of("/var/lib/skiff");
    }
    return Path.of(System.getProperty("user.home"), ".local", "share", "skiff");
  }

  /** Opens a home, creating it with {@code creation} settings if it does not exist. */
  public static ImageStore open(Path home, ImageImporter.Options creation) throws IOException {
    Files.createDirectories(home);
    Path props = home.resolve("store.properties");
    ImageImporter.Options options;
    if (Files.exists(props)) {
      Properties p = new Properties();
      try (InputStream in = Files.newInputStream(props)) {
        p.load(in);
      }
      ImageImporter.Options d = ImageImporter.Options.defaults();
      options = new ImageImporter.Options(DigestAlgorithm.fromLabel(p.getProperty("digest", "xxh3-128")),
          Integer.parseInt(p.getProperty("chunk-size", "" + d.chunkSize())),
          Integer.parseInt(p.getProperty("inline-limit", "" + d.inlineLimit())),
          Long.parseLong(p.getProperty("pack-target", "" + d.packTarget())),
          Integer.parseInt(p.getProperty("zstd-level", "" + d.zstdLevel())), creation.maxExpansion());
    } else {
      options = creation;
      Properties p = new Properties();
      p.setProperty("digest", options.algorithm().label());
      p.setProperty("chunk-size", Integer.toString(options.chunkSize()));
      p.setProperty("inline-limit", Integer.toString(options.inlineLimit()));
      p.setProperty("pack-target", Long.toString(options.packTarget()));
      p.setProperty("zstd-level", Integer.toString(options.zstdLevel()));
      Path tmp = home.resolve("store.properties.tmp");
      try (OutputStream out = Files.newOutputStream(tmp)) {
        p.store(out, "Skiff store settings, fixed when the store was created");
      }
      Files.move(tmp, props, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }
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

  private synchronized ChunkCatalog catalog() throws IOException {
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
   * Imports an image from {@code source} (see {@link ImageImporter#importFrom}) and tags it. The tag
   * is written only after the index and every pack are stored.
   */
  public ImportResult importImage(String source, ImageRef ref, ImportProgress progress) throws IOException {
    Path tmp = home.resolve("tmp");
    Files.createDirectories(tmp);
    try (FileChannel lockFile = FileChannel.open(home.resolve("lock"), StandardOpenOption.CREATE,
        StandardOpenOption.WRITE); FileLock lock = lockFile.lock()) {
      ImageImporter importer = new ImageImporter(blobs, catalog(), tmp, options);
      ImportResult r = importer.importFrom(source, progress);
      ObjectNode refDoc = JSON.createObjectNode();
      refDoc.put("index", r.index().toString());
      refDoc.put("imported", Instant.now().toString());
      refDoc.put("source", r.source());
      refDoc.put("newBytes", r.newBytes());
      refDoc.put("newChunks", r.newChunks());
      blobs.put(BlobNames.ref(ref.name(), ref.tag()), new ByteArrayInputStream(JSON.writeValueAsBytes(refDoc)));
      return r;
    }
  }

  /** The index digest a tag points at, if the tag exists. */
  public Optional<Digest> resolve(ImageRef ref) throws IOException {
    return refDoc(ref).map(d -> Digest.parse(d.path("index").asText()));
  }

  private Optional<JsonNode> refDoc(ImageRef ref) throws IOException {
    String name = BlobNames.ref(ref.name(), ref.tag());
    Optional<Long> size = blobs.size(name);
    if (size.isEmpty()) {
      return Optional.empty();
    }
    return Optional.of(JSON.readTree(blobs.readFully(name, 0, Math.toIntExact(size.get())).array()));
  }

  /** Every tagged image, sorted by name and tag. */
  public List<ImageInfo> images() throws IOException {
    List<ImageInfo> out = new ArrayList<>();
    for (String name : blobs.list("refs/")) {
      String rest = name.substring("refs/".length());
      int slash = rest.lastIndexOf('/');
      ImageRef ref = new ImageRef(rest.substring(0, slash), rest.substring(slash + 1));
      out.add(info(ref).orElseThrow());
    }
    return out;
  }

  /** What {@code skiff images} shows for one tag. */
  public Optional<ImageInfo> info(ImageRef ref) throws IOException {
    Optional<JsonNode> doc = refDoc(ref);
    if (doc.isEmpty()) {
      return Optional.empty();
    }
    Digest d = Digest.parse(doc.get().path("index").asText());
    try (ImageIndex index = openIndex(d)) {
      JsonNode stats = JSON.readTree(index.meta("stats"));
      return Optional.of(new ImageInfo(ref, d, Instant.parse(doc.get().path("imported").asText()),
          doc.get().path("source").asText(), stats.path("files").asLong(), stats.path("logicalBytes").asLong(),
          stats.path("storedBytes").asLong(), doc.get().path("newBytes").asLong(), Files.size(index.file())));
    }
  }

  /** Removes a tag (blobs stay until garbage collection). Returns false if it did not exist. */
  public boolean untag(ImageRef ref) throws IOException {
    return blobs.delete(BlobNames.ref(ref.name(), ref.tag()));
  }

  /** Opens an image's index read-only, in place (the embedded store keeps it as a file). */
  public ImageIndex openIndex(Digest digest) throws IOException {
    String name = BlobNames.index(digest);
    Path file = blobs.localFile(name).orElseThrow(() -> new IOException("image index " + digest
        + " is missing from " + blobs.describe()));
    return ImageIndex.open(file);
  }

  /** Opens the index a tag points at. */
  public ImageIndex openIndex(ImageRef ref) throws IOException {
    Digest d = resolve(ref).orElseThrow(() -> new IOException("no image " + ref + " in " + home
        + " (see skiff images)"));
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
  }
}
