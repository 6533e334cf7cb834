package dev.skiff.casfs;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.index.DamagedIndexException;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.MeteredBlobStore;
import dev.skiff.casfs.util.Trees;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One garbage collection of a store (see {@link ImageStore#gc}). Run under the writer lock.
 *
 * <p>Liveness starts from the tags. Damage narrows what may be removed instead of stopping the
 * collection: a tag that cannot be read could name any index, so no index or pack is removed; an
 * index that cannot be read could need any pack, so no pack is removed. Chunks the catalog places
 * in packs that are gone are forgotten, so that the next import stores them again.
 */
final class GarbageCollector {
  private static final Logger LOG = LoggerFactory.getLogger(GarbageCollector.class);

  private final ImageStore store;
  private final MeteredBlobStore blobs;
  private final Duration keepRecent;
  private final long cutoff;
  private final List<String> problems = new ArrayList<>();

  GarbageCollector(ImageStore store, Duration keepRecent) {
    this.store = store;
    this.blobs = store.blobs();
    this.keepRecent = keepRecent;
    this.cutoff = System.currentTimeMillis() - keepRecent.toMillis();
  }

  ImageStore.GcResult run(boolean dryRun) throws IOException {
    Set<String> liveIndexes = new HashSet<>();
    for (String name : blobs.list(BlobNames.INDEXES)) {
      if (recent(name)) {
        liveIndexes.add(name);
      }
    }
    boolean keepAllIndexes = false;
    boolean keepAllPacks = false;
    int tags = 0;
    Set<String> livePacks = new HashSet<>();
    Set<String> presentPacks = new HashSet<>(blobs.list(BlobNames.PACKS));
    for (ImageRef ref : store.tags()) {
      Optional<TagDocument> tag;
      try {
        tag = store.readTag(ref);
      } catch (DamagedTagException e) {
        problems.add(e.getMessage() + "; it may name any index, so no index or pack was removed");
        keepAllIndexes = true;
        keepAllPacks = true;
        continue;
      }
      if (tag.isEmpty()) {
        continue; // removed meanwhile
      }
      tags++;
      Digest d = tag.get().index();
      liveIndexes.add(BlobNames.index(d));
      if (blobs.localFile(BlobNames.index(d)).isEmpty()) {
        problems.add("image " + ref + ": its index " + d.shortHex() + " is missing");
        continue;
      }
      try (ImageIndex index = store.openIndex(d)) {
        livePacks.addAll(index.packs());
        if (tag.get().remote() == null) {
          for (String pack : index.packs()) {
            if (!presentPacks.contains(pack)) {
              problems.add(
                  "image " + ref + ": pack " + pack + " is missing; reads of its chunks fail");
            }
          }
        }
      } catch (DamagedIndexException e) {
        problems.add(
            "image "
                + ref
                + ": its index "
                + d.shortHex()
                + " is damaged ("
                + e.reason()
                + "); the packs it needs cannot be known, so no pack was removed");
        keepAllPacks = true;
      }
    }
    Set<String> mapped = indexesMappedByProcesses();
    int inUse = 0;
    for (String name : blobs.list(BlobNames.INDEXES)) {
      if (!liveIndexes.contains(name) && mapped.contains(name)) {
        liveIndexes.add(name);
        inUse++;
        Optional<Path> file = blobs.localFile(name);
        if (file.isPresent()) {
          try (ImageIndex index =
              ImageIndex.open(file.get())) { // mapped by a mount: verified there
            livePacks.addAll(index.packs());
          } catch (DamagedIndexException e) {
            keepAllPacks = true;
          }
        }
      }
    }
    Set<String> deadPacks = new TreeSet<>();
    if (!keepAllPacks) {
      for (String name : presentPacks) {
        String pack = BlobNames.packOf(name);
        if (!livePacks.contains(pack) && !recent(name)) {
          deadPacks.add(pack);
        }
      }
    }
    List<String> deadIndexes = new ArrayList<>();
    if (!keepAllIndexes) {
      for (String name : blobs.list(BlobNames.INDEXES)) {
        if (!liveIndexes.contains(name)) {
          deadIndexes.add(name);
        }
      }
    }
    long packBytes = 0;
    for (String pack : deadPacks) {
      packBytes += blobs.size(pack).orElse(0L) + blobs.size(BlobNames.chunkListOf(pack)).orElse(0L);
    }
    long indexBytes = 0;
    for (String index : deadIndexes) {
      indexBytes += blobs.size(index).orElse(0L);
    }
    Set<String> gone = new TreeSet<>(store.catalog().packs());
    gone.removeAll(presentPacks);
    long scratchBytes = 0;
    if (!dryRun) {
      if (!gone.isEmpty()) {
        long n = store.catalog().removePacks(gone);
        problems.add(
            gone.size()
                + " packs the catalog named are gone; forgot their "
                + n
                + " chunks, so the next import stores them again");
      }
      store.catalog().removePacks(deadPacks); // first, so that nothing deduplicates against them
      for (String pack : deadPacks) {
        blobs.delete(pack);
        blobs.delete(BlobNames.chunkListOf(pack));
      }
      for (String name : deadIndexes) {
        blobs.delete(name);
        BlobNames.indexDigest(name).ifPresent(d -> forgetStamp(d));
      }
      scratchBytes = reapScratch(store, keepRecent);
    } else if (!gone.isEmpty()) {
      problems.add(
          gone.size()
              + " packs the catalog named are gone (a collection that is not a dry run forgets"
              + " their chunks)");
    }
    Map<String, Integer> derived = new TreeMap<>();
    if (!keepAllIndexes) {
      for (DerivedData owner : store.derivedData()) {
        int n = 0;
        for (Digest d : owner.indexes(store)) {
          if (!liveIndexes.contains(BlobNames.index(d))) {
            n += owner.remove(store, d, dryRun);
          }
        }
        derived.put(owner.kind(), n);
      }
    }
    return new ImageStore.GcResult(
        deadPacks.size(),
        packBytes,
        deadIndexes.size(),
        indexBytes,
        derived,
        tags,
        inUse,
        scratchBytes,
        problems);
  }

  private void forgetStamp(Digest d) {
    try {
      store.verifier().forget(d);
    } catch (IOException e) {
      LOG.debug("forgetting the stamp of {}: {}", d, e.toString());
    }
  }

  private boolean recent(String blob) throws IOException {
    Optional<Path> f = blobs.localFile(blob);
    return f.isPresent() && Files.getLastModifiedTime(f.get()).toMillis() > cutoff;
  }

  /** Index blobs of this store that some process has memory-mapped (an open mount). */
  private Set<String> indexesMappedByProcesses() throws IOException {
    Set<String> out = new HashSet<>();
    String prefix = store.home().resolve("blobs").toRealPath() + "/";
    try (var procs = Files.list(Path.of("/proc"))) {
      for (Path pid : procs.filter(p -> p.getFileName().toString().matches("\\d+")).toList()) {
        List<String> maps;
        try {
          maps = Files.readAllLines(pid.resolve("maps"), StandardCharsets.ISO_8859_1);
        } catch (IOException | UncheckedIOException gone) {
          continue; // exited, or not ours to read
        }
        for (String line : maps) {
          int at = line.indexOf(prefix + BlobNames.INDEXES);
          if (at >= 0) {
            out.add(line.substring(at + prefix.length()).strip());
          }
        }
      }
    }
    return out;
  }

  /**
   * Removes scratch that no live process owns: directories under {@code HOME/tmp} named after a
   * process that is gone (a killed import), and anything else there or in the blob store's own
   * temporary directory older than {@code keepRecent} (left by older versions, or by a put that was
   * killed). Returns the bytes removed.
   */
  static long reapScratch(ImageStore store, Duration keepRecent) throws IOException {
    long cutoff = System.currentTimeMillis() - keepRecent.toMillis();
    long bytes = 0;
    for (Path dir :
        List.of(store.home().resolve("tmp"), store.home().resolve("blobs").resolve(".tmp"))) {
      if (!Files.isDirectory(dir)) {
        continue;
      }
      try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
        for (Path p : entries) {
          String name = p.getFileName().toString();
          int dot = name.indexOf('.');
          boolean owned =
              Files.isDirectory(p) && dot > 0 && name.substring(0, dot).matches("\\d+-\\d*");
          boolean dead =
              owned
                  ? !Owner.aliveByTag(name.substring(0, dot))
                  : Files.getLastModifiedTime(p).toMillis() < cutoff;
          if (dead) {
            long size = Trees.size(p);
            Trees.delete(p);
            LOG.info("removed scratch {} ({} bytes) that no running process owns", p, size);
            bytes += size;
          }
        }
      }
    }
    return bytes;
  }
}
