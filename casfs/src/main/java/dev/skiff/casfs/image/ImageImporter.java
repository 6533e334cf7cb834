package dev.skiff.casfs.image;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.index.IndexWriter;
import dev.skiff.casfs.index.Inode;
import dev.skiff.casfs.pack.ChunkCatalog;
import dev.skiff.casfs.pack.ChunkLocation;
import dev.skiff.casfs.registry.RegistryClient;
import dev.skiff.casfs.registry.RegistryRef;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import java.io.IOException;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;

/**
 * Imports an image: flattens its layers, stores the chunks the store lacks in packs, writes the
 * index and stores it under its digest. Nothing refers to the new blobs until the caller sets a
 * tag, so a failed import leaves the store consistent (at worst with orphan packs).
 */
public final class ImageImporter {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Tunables; {@link #defaults()} is what a store starts with. */
  public record Options(
      DigestAlgorithm algorithm,
      int chunkSize,
      int inlineLimit,
      long packTarget,
      int zstdLevel,
      long maxExpansion) {
    public static Options defaults() {
      // Files up to 512 bytes inline: larger ones in the index would make it the bulk of what a
      // cold start fetches (a Debian image: 10.5 MB index inlining 4 KiB, 2.2 MB at 512 bytes).
      return new Options(DigestAlgorithm.XXH3_128, 1 << 20, 512, 256L << 20, 3, 200);
    }

    public Options {
      if (chunkSize < 4096 || Integer.bitCount(chunkSize) != 1) {
        throw new IllegalArgumentException(
            "chunk size must be a power of two of at least 4096, got " + chunkSize);
      }
      if (inlineLimit < 0 || inlineLimit > 65536) {
        throw new IllegalArgumentException("inline limit must be 0..65536, got " + inlineLimit);
      }
    }
  }

  private final BlobStore store;
  private final ChunkCatalog catalog;
  private final Path scratch;
  private final Options options;

  public ImageImporter(BlobStore store, ChunkCatalog catalog, Path scratch, Options options) {
    this.store = store;
    this.catalog = catalog;
    this.scratch = scratch;
    this.options = options;
  }

  /**
   * Imports from a source spec: {@code PATH[:TAG]} naming an OCI layout directory, a docker save or
   * OCI archive, a rootfs tarball (gzip, zstd or none), or a plain directory; or {@code
   * docker://...}, an image in a registry (with {@link RegistryClient.Options#defaults()}).
   */
  public ImportResult importFrom(String spec, ImportProgress progress) throws IOException {
    try (ImageSource source = openSource(spec)) {
      return importFrom(source, progress);
    }
  }

  /**
   * Imports the image {@code ref} from its registry: layers stream from the registry into the
   * store, no tar on disk between them.
   */
  public ImportResult importFrom(
      RegistryRef ref, RegistryClient.Options registry, ImportProgress progress)
      throws IOException {
    try (ImageSource source = RegistrySource.open(ref, registry)) {
      return importFrom(source, progress);
    }
  }

  /**
   * Stores, as a new image, the image whose index is the file {@code source} with {@code config} as
   * its image config: its files and chunks as they are, a new index only (no file is read again).
   */
  public ImportResult reconfigure(Path source, byte[] config, String describe) throws IOException {
    long start = System.nanoTime();
    Files.createDirectories(scratch);
    Path indexFile = scratch.resolve("reconfigured-" + System.nanoTime() + ".mdb");
    try {
      IndexWriter.withMeta(
          source, scratch, Map.of("config", new String(config, StandardCharsets.UTF_8)), indexFile);
      Digest digest = digestFile(indexFile);
      long indexBytes = Files.size(indexFile);
      String name = BlobNames.index(digest);
      long newBytes = store.exists(name) ? 0 : indexBytes;
      store.putFile(name, indexFile);
      return new ImportResult(
          digest,
          describe,
          0,
          0,
          0,
          0,
          0,
          0,
          newBytes,
          indexBytes,
          (System.nanoTime() - start) / 1e9);
    } finally {
      Files.deleteIfExists(indexFile);
    }
  }

  /**
   * Imports a build step as image {@code parent} (its index, open) plus {@code diff} (a directory:
   * a kernel overlayfs upper directory when {@code overlay}, else files as they are), with {@code
   * config}: the parent's files are taken from its index as they are (their chunks where they are
   * stored, nothing read), so a step costs what it changed.
   */
  public ImportResult importOver(
      dev.skiff.casfs.index.ImageIndex parent,
      Path diff,
      boolean overlay,
      byte[] config,
      String describe,
      ImportProgress progress)
      throws IOException {
    ImageSource.Layer d = RootfsSources.directory(diff).layers().get(0);
    ImageSource source =
        ImageSource.of(describe, config, List.of(overlay ? ImageSource.Layer.overlay(d) : d));
    return importFrom(source, progress, parent);
  }

  ImageSource openSource(String spec) throws IOException {
    if (RegistryRef.is(spec)) {
      return RegistrySource.open(RegistryRef.parse(spec), RegistryClient.Options.defaults());
    }
    Path path = Path.of(spec);
    String tag = null;
    if (!Files.exists(path)) {
      int colon = spec.lastIndexOf(':');
      if (colon > 0 && Files.exists(Path.of(spec.substring(0, colon)))) {
        path = Path.of(spec.substring(0, colon));
        tag = spec.substring(colon + 1);
      } else {
        throw new ImportException(spec, null, "no such file or directory");
      }
    }
    path = path.toAbsolutePath().normalize();
    if (Files.isDirectory(path)) {
      Archive a = Archive.directory(path);
      if (ContainerImageSource.recognises(a)) {
        return ContainerImageSource.open(a, tag);
      }
      requireNoTag(spec, tag);
      return RootfsSources.directory(path);
    }
    if (!Files.isRegularFile(path)) {
      throw new ImportException(spec, null, "not a regular file or directory");
    }
    if (isTarContainer(path)) {
      Archive a = Archive.tar(path);
      if (ContainerImageSource.recognises(a)) {
        return ContainerImageSource.open(a, tag);
      }
      a.close();
    }
    requireNoTag(spec, tag);
    return RootfsSources.tarball(path);
  }

  private static void requireNoTag(String spec, String tag) throws ImportException {
    if (tag != null) {
      throw new ImportException(
          spec, null, "a tag was given, but this is not an image layout or archive");
    }
  }

  /** Whether an uncompressed tar file holds manifest.json or index.json near its start. */
  private static boolean isTarContainer(Path path) throws IOException {
    try (var in = new java.io.BufferedInputStream(Files.newInputStream(path))) {
      byte[] head = in.readNBytes(512);
      if (head.length < 512 || head[257] != 'u' || head[258] != 's' || head[259] != 't') {
        return false;
      }
    }
    // A rootfs tarball has no top-level manifest.json/index.json; a cheap scan of the names
    // decides.
    try (var tf = new org.apache.commons.compress.archivers.tar.TarFile(path)) {
      for (var e : tf.getEntries()) {
        String n = e.getName().startsWith("./") ? e.getName().substring(2) : e.getName();
        if (n.equals("manifest.json") || n.equals("oci-layout")) {
          return true;
        }
      }
    } catch (IOException | RuntimeException e) {
      return false;
    }
    return false;
  }

  ImportResult importFrom(ImageSource source, ImportProgress progress) throws IOException {
    return importFrom(source, progress, null);
  }

  /** Imports {@code source}'s layers over image {@code base}'s tree (null: over nothing). */
  private ImportResult importFrom(
      ImageSource source, ImportProgress progress, dev.skiff.casfs.index.ImageIndex base)
      throws IOException {
    long start = System.nanoTime();
    Files.createDirectories(scratch);
    List<ImageSource.Layer> layers = source.layers();
    byte[] config = source.config();
    if (config != null) {
      try {
        JSON.readTree(config);
      } catch (com.fasterxml.jackson.core.JacksonException e) {
        throw new ImportException(source.describe(), "config", "image config is not valid JSON");
      }
    }
    try (ChunkWriter chunks =
        new ChunkWriter(
            store,
            catalog,
            options.algorithm(),
            options.chunkSize(),
            options.inlineLimit(),
            options.packTarget(),
            options.zstdLevel(),
            scratch)) {
      TreeBuilder tree = new TreeBuilder(chunks);
      if (base != null) {
        tree.seed(base);
      }
      long[] files = {0};
      for (int i = 0; i < layers.size(); i++) {
        ImageSource.Layer layer = layers.get(i);
        int layerNo = i + 1;
        try (LayerStreams.LayerInput in = layer.open(options.maxExpansion())) {
          TarReader reader = new TarReader(in, layer.describe());
          TarEntry e;
          while ((e = reader.next()) != null) {
            if (layer.overlayDiff()) {
              tree.applyOverlay(layerNo, e, reader.content(), layer.describe());
            } else {
              tree.apply(layerNo, e, reader.content(), layer.describe());
            }
            if (e.type() == TarEntry.REGULAR) {
              files[0]++;
              progress.update(files[0], chunks.logicalBytes, layerNo, layers.size());
            }
          }
          in.finish();
        }
      }
      if (config == null && tree.looksLikeImageArchive()) {
        throw new ImportException(
            source.describe(),
            null,
            "this is a compressed docker-save or OCI archive, not a "
                + "rootfs: decompress it (gunzip, zstd -d) and import the .tar");
      }
      List<ChunkLocation> added = chunks.finish();
      catalog.addAll(added);
      return writeIndex(source, layers, config, tree, chunks, start);
    }
  }

  private ImportResult writeIndex(
      ImageSource source,
      List<ImageSource.Layer> layers,
      byte[] config,
      TreeBuilder tree,
      ChunkWriter chunks,
      long start)
      throws IOException {
    List<Node> nodes = tree.number();
    Path indexFile = Files.createTempFile(scratch, "index-", ".final");
    try {
      long files = 0;
      long uniqueStored = 0;
      // the image's, counted from its tree: a build step's import read only its own changes
      long treeBytes = 0;
      long treeChunkRefs = 0;
      Map<Digest, Boolean> unique = new java.util.HashMap<>();
      try (IndexWriter w = new IndexWriter(scratch, options.algorithm(), options.chunkSize())) {
        for (Node n : nodes) {
          int chunkCount = n.chunks.size();
          if (n.isRegular()) {
            treeBytes += n.size;
            treeChunkRefs += chunkCount;
          }
          w.putInode(
              new Inode(
                  n.ino,
                  n.mode,
                  (int) n.uid,
                  (int) n.gid,
                  n.nlink,
                  n.size,
                  n.mtimeSeconds,
                  n.mtimeNanos,
                  n.rdev,
                  chunkCount,
                  n.inline != null && n.isRegular()));
          if (n.isRegular()) {
            files++;
            if (n.inline != null && n.inline.length > 0) {
              w.putData(n.ino, n.inline);
            }
            for (int c = 0; c < chunkCount; c++) {
              ChunkWriter.PendingChunk pc = n.chunks.get(c);
              w.putChunk(n.ino, c, pc.location());
              if (unique.put(pc.digest, Boolean.TRUE) == null) {
                uniqueStored += pc.storedLength;
              }
            }
          } else if (n.symlinkTarget != null) {
            w.putData(n.ino, n.symlinkTarget);
          }
          for (var x : n.xattrs.entrySet()) {
            w.putXattr(n.ino, x.getKey().getBytes(StandardCharsets.ISO_8859_1), x.getValue());
          }
          if (n.isDir()) {
            int pos = 0;
            for (var c : n.children.entrySet()) {
              w.putDirent(
                  n.ino, pos++, c.getKey().getBytes(StandardCharsets.ISO_8859_1), c.getValue().ino);
            }
          }
        }
        if (config != null) {
          w.putMeta("config", new String(config, StandardCharsets.UTF_8));
        }
        ObjectNode src = JSON.createObjectNode();
        ArrayNode ls = src.putArray("layers");
        for (ImageSource.Layer l : layers) {
          ObjectNode o = ls.addObject();
          o.put("digest", l.digest());
          o.put("mediaType", l.mediaType());
          o.put("size", l.compressedSize());
        }
        w.putMeta("source", JSON.writeValueAsString(src));
        ObjectNode stats = JSON.createObjectNode();
        stats.put("inodes", nodes.size());
        stats.put("files", files);
        stats.put("logicalBytes", treeBytes);
        stats.put("chunkRefs", treeChunkRefs);
        stats.put("uniqueChunks", unique.size());
        stats.put("storedBytes", uniqueStored);
        w.putMeta("stats", JSON.writeValueAsString(stats));
        w.finish(indexFile);
      }
      Digest digest = digestFile(indexFile);
      long indexBytes = Files.size(indexFile);
      String name = BlobNames.index(digest);
      long newBytes = chunks.newStoredBytes;
      if (!store.exists(name)) {
        newBytes += indexBytes;
      }
      store.putFile(
          name,
          indexFile); // even if present: the bytes just hashed replace a copy that may be damaged
      double seconds = (System.nanoTime() - start) / 1e9;
      return new ImportResult(
          digest,
          source.describe(),
          files,
          nodes.size(),
          chunks.logicalBytes,
          chunks.chunkRefs,
          unique.size(),
          chunks.newChunkCount,
          newBytes,
          indexBytes,
          seconds);
    } finally {
      Files.deleteIfExists(indexFile);
    }
  }

  private Digest digestFile(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size());
      return options.algorithm().digest(map);
    }
  }
}
