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
import dev.skiff.casfs.store.S3Location;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
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
    Path tmp = scratch();
    return locked(() -> {
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
    });
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
    try (FileChannel lockFile = FileChannel.open(home.resolve("lock"), StandardOpenOption.CREATE,
        StandardOpenOption.WRITE); FileLock lock = lockFile.lock()) {
      return body.call();
    }
  }

  /** What {@link #gc} removed (or, in a dry run, would remove), and what it kept. */
  public record GcResult(int packs, long packBytes, int indexes, long indexBytes, int traces, int tags,
      int inUse) {}

  /**
   * Removes what no tag needs: packs (with their chunk lists) that no tagged index points into,
   * indexes no tag names, and traces of removed indexes. An index some process has mapped (a
   * running mount of an image whose tag is gone) counts as needed, with its packs, and so does
   * every blob written less than {@code keepRecent} ago (a pull writes its index before its tag
   * without the writer lock). Holds the writer lock throughout.
   */
  public GcResult gc(boolean dryRun, java.time.Duration keepRecent) throws IOException {
    long cutoff = System.currentTimeMillis() - keepRecent.toMillis();
    return locked(() -> {
      java.util.Set<String> liveIndexes = new java.util.HashSet<>();
      for (String name : blobs.list("indexes/")) {
        if (recent(name, cutoff)) {
          liveIndexes.add(name);
        }
      }
      int tags = 0;
      for (String name : blobs.list("refs/")) {
        Optional<byte[]> doc = blobs.readAll(name);
        if (doc.isPresent()) {
          liveIndexes.add(BlobNames.index(Digest.parse(JSON.readTree(doc.get()).path("index").asText())));
          tags++;
        }
      }
      java.util.Set<String> mapped = indexesMappedByProcesses();
      int inUse = 0;
      for (String name : blobs.list("indexes/")) {
        if (!liveIndexes.contains(name) && mapped.contains(name)) {
          liveIndexes.add(name);
          inUse++;
        }
      }
      java.util.Set<String> livePacks = new java.util.HashSet<>();
      for (String name : liveIndexes) {
        Optional<Path> file = blobs.localFile(name); // empty if the index is not here (yet)
        if (file.isPresent()) {
          try (ImageIndex index = ImageIndex.open(file.get())) {
            livePacks.addAll(index.packs());
          }
        }
      }
      java.util.Set<String> deadPacks = new java.util.TreeSet<>();
      for (String name : blobs.list("packs/")) {
        String pack = name.endsWith(".idx") ? name.substring(0, name.length() - 4) : name;
        if (!livePacks.contains(pack) && !recent(name, cutoff)) {
          deadPacks.add(pack);
        }
      }
      List<String> deadIndexes = new ArrayList<>();
      for (String name : blobs.list("indexes/")) {
        if (!liveIndexes.contains(name)) {
          deadIndexes.add(name);
        }
      }
      List<String> deadTraces = new ArrayList<>();
      for (String name : blobs.list("traces/")) {
        String[] p = name.split("/");
        String hex = p.length == 3 ? p[2].split("\\.")[0] : "";
        if (!liveIndexes.contains("indexes/" + p[1] + "/" + hex)) {
          deadTraces.add(name);
        }
      }
      long packBytes = 0;
      for (String pack : deadPacks) {
        packBytes += blobs.size(pack).orElse(0L) + blobs.size(pack + ".idx").orElse(0L);
      }
      long indexBytes = 0;
      for (String index : deadIndexes) {
        indexBytes += blobs.size(index).orElse(0L);
      }
      if (!dryRun) {
        catalog().removePacks(deadPacks); // first, so that nothing deduplicates against them
        for (String pack : deadPacks) {
          blobs.delete(pack);
          blobs.delete(pack + ".idx");
        }
        for (String name : deadIndexes) {
          blobs.delete(name);
        }
        for (String name : deadTraces) {
          blobs.delete(name);
        }
      }
      return new GcResult(deadPacks.size(), packBytes, deadIndexes.size(), indexBytes, deadTraces.size(), tags, inUse);
    });
  }

  private boolean recent(String blob, long cutoffMillis) throws IOException {
    Optional<Path> f = blobs.localFile(blob);
    return f.isPresent() && Files.getLastModifiedTime(f.get()).toMillis() > cutoffMillis;
  }

  /** Index blobs of this store that some process has memory-mapped (an open mount). */
  private java.util.Set<String> indexesMappedByProcesses() throws IOException {
    java.util.Set<String> out = new java.util.HashSet<>();
    String prefix = home.resolve("blobs").toRealPath() + "/";
    try (var procs = Files.list(Path.of("/proc"))) {
      for (Path pid : procs.filter(p -> p.getFileName().toString().matches("\\d+")).toList()) {
        List<String> maps;
        try {
          maps = Files.readAllLines(pid.resolve("maps"), java.nio.charset.StandardCharsets.ISO_8859_1);
        } catch (IOException | UncheckedIOException gone) {
          continue; // exited, or not ours to read
        }
        for (String line : maps) {
          int at = line.indexOf(prefix + "indexes/");
          if (at >= 0) {
            out.add(line.substring(at + prefix.length()).strip());
          }
        }
      }
    }
    return out;
  }

  /**
   * Points a tag at an index already in this store (an optimized image, say). {@code newBytes} is
   * what producing it added to the store.
   */
  public void tag(ImageRef ref, Digest index, String source, long newBytes) throws IOException {
    if (blobs.localFile(BlobNames.index(index)).isEmpty()) {
      throw new IOException("index " + index + " is not in " + home);
    }
    ObjectNode refDoc = JSON.createObjectNode();
    refDoc.put("index", index.toString());
    refDoc.put("imported", Instant.now().toString());
    refDoc.put("source", source);
    refDoc.put("newBytes", newBytes);
    blobs.put(BlobNames.ref(ref.name(), ref.tag()), new ByteArrayInputStream(JSON.writeValueAsBytes(refDoc)));
  }

  /** A scratch directory inside this home (same filesystem as the store, so renames are cheap). */
  public Path scratch() throws IOException {
    return Files.createDirectories(home.resolve("tmp"));
  }

  /** The index digest a tag points at, if the tag exists. */
  public Optional<Digest> resolve(ImageRef ref) throws IOException {
    return refDoc(ref).map(d -> Digest.parse(d.path("index").asText()));
  }

  private Optional<JsonNode> refDoc(ImageRef ref) throws IOException {
    Optional<byte[]> doc = blobs.readAll(BlobNames.ref(ref.name(), ref.tag()));
    return doc.isEmpty() ? Optional.empty() : Optional.of(JSON.readTree(doc.get()));
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

  /** What a push sent: blobs uploaded and skipped (the remote had them), and bytes uploaded. */
  public record PushResult(Digest index, int uploaded, int skipped, long bytes) {}

  /** Receives push progress: a line per blob. */
  @FunctionalInterface
  public interface PushProgress {
    PushProgress NONE = (name, bytes, uploaded) -> {};

    void blob(String name, long bytes, boolean uploaded);
  }

  /**
   * Uploads an image to a remote store: every pack (and its chunk list) the remote lacks, the
   * index, and the tag last, so that a remote tag never points at an incomplete image. Safe to
   * interrupt and re-run: blobs already there whole are skipped.
   */
  public PushResult push(ImageRef ref, BlobStore remote, PushProgress progress) throws IOException {
    Digest d = resolve(ref).orElseThrow(() -> new IOException("no image " + ref + " in " + home));
    List<String> blobsToSend = new ArrayList<>();
    try (ImageIndex index = openIndex(d)) {
      for (String pack : index.packs()) {
        blobsToSend.add(pack);
        blobsToSend.add(pack + ".idx");
      }
    }
    blobsToSend.add(BlobNames.index(d));
    int uploaded = 0;
    int skipped = 0;
    long bytes = 0;
    for (String name : blobsToSend) {
      Path local = blobs.localFile(name).orElseThrow(() -> new IOException(
          "blob " + name + " of " + ref + " is not in the local store (was the image pulled, not imported?)"));
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
    ObjectNode refDoc = JSON.createObjectNode();
    refDoc.put("index", d.toString());
    refDoc.put("pushed", Instant.now().toString());
    remote.put(BlobNames.ref(ref.name(), ref.tag()), new ByteArrayInputStream(JSON.writeValueAsBytes(refDoc)));
    return new PushResult(d, uploaded, skipped, bytes);
  }

  /** The index digest a tag in a remote store points at (one GET). */
  public static Digest remoteTag(BlobStore remote, S3Location where, ImageRef ref) throws IOException {
    byte[] doc = remote.readAll(BlobNames.ref(ref.name(), ref.tag()))
        .orElseThrow(() -> new IOException("no image " + ref + " in " + where));
    return Digest.parse(JSON.readTree(doc).path("index").asText());
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
    String refName = BlobNames.ref(ref.name(), ref.tag());
    String indexName = BlobNames.index(d);
    if (blobs.localFile(indexName).isEmpty()) {
      // One GET for the whole index: it is needed whole before the mount, and a size lookup or
      // a series of ranges would each cost a round trip.
      byte[] index = remote.readAll(indexName).orElseThrow(() -> new IOException(
          "remote tag " + ref + " points at index " + d + ", which " + where + " does not have"));
      Digest got = d.algorithm().digest(index);
      if (!got.equals(d)) {
        throw new IOException("index fetched from " + where + " is corrupt: digest " + got + ", expected " + d);
      }
      Path tmp = Files.createTempFile(scratch(), "pull-", ".index");
      try {
        Files.write(tmp, index);
        blobs.putFile(indexName, tmp);
      } finally {
        Files.deleteIfExists(tmp);
      }
    }
    ObjectNode refDoc = JSON.createObjectNode();
    refDoc.put("index", d.toString());
    refDoc.put("imported", Instant.now().toString());
    refDoc.put("source", where.url() + "/" + ref);
    refDoc.put("newBytes", 0);
    ObjectNode r = refDoc.putObject("remote");
    r.put("url", where.url());
    r.put("endpoint", where.endpoint() == null ? null : where.endpoint().toString());
    r.put("region", where.region());
    r.put("pathStyle", where.pathStyle());
    blobs.put(refName, new ByteArrayInputStream(JSON.writeValueAsBytes(refDoc)));
  }

  /** Where a pulled image's chunks live, or empty for an image whose chunks are in this store. */
  public Optional<S3Location> remoteOf(ImageRef ref) throws IOException {
    Optional<JsonNode> doc = refDoc(ref);
    if (doc.isEmpty() || !doc.get().has("remote")) {
      return Optional.empty();
    }
    JsonNode r = doc.get().path("remote");
    String endpoint = r.path("endpoint").isTextual() ? r.path("endpoint").asText() : null;
    return Optional.of(S3Location.parse(r.path("url").asText(), endpoint == null ? null : java.net.URI.create(endpoint),
        r.path("region").isTextual() ? r.path("region").asText() : null, r.path("pathStyle").asBoolean()));
  }

  /** The disk chunk cache of this home (used for images whose chunks are remote). */
  public Path chunkCacheDir() {
    return home.resolve("cache").resolve("chunks");
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
