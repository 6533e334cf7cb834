package dev.skiff.casfs;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.index.DamagedIndexException;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.pack.ChunkLocation;
import dev.skiff.casfs.pack.PackWriter;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.MeteredBlobStore;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * One check of a store (see {@link ImageStore#fsck}). Run under the writer lock. It repairs only
 * the catalog (which is derived): chunks whose pack is gone or whose bytes are corrupt are
 * forgotten, so imports store them again. Damaged images are reported, not removed: removing a tag
 * is the user's call.
 */
final class StoreChecker {
  private final ImageStore store;
  private final MeteredBlobStore blobs;
  private final List<String> missingPacks = new ArrayList<>();
  private final List<String> corruptChunks = new ArrayList<>();
  private final List<String> damagedImages = new ArrayList<>();

  StoreChecker(ImageStore store) {
    this.store = store;
    this.blobs = store.blobs();
  }

  ImageStore.FsckResult run(boolean verifyChunks) throws IOException {
    Set<String> present = new HashSet<>(blobs.list(BlobNames.PACKS));
    Set<String> packs = new TreeSet<>();
    for (String name : present) {
      if (!BlobNames.isChunkList(name)) {
        packs.add(name);
      }
    }
    Set<String> gone = new TreeSet<>(store.catalog().packs());
    gone.removeAll(present);
    missingPacks.addAll(gone);
    Set<Digest> corrupt = new HashSet<>();
    long verified = 0;
    for (String pack : packs) {
      if (!present.contains(BlobNames.chunkListOf(pack))) {
        corruptChunks.add(
            pack
                + ": its chunk list (.idx) is missing; its chunks cannot be checked or found by imports");
        continue;
      }
      byte[] idx = blobs.readAll(BlobNames.chunkListOf(pack)).orElseThrow();
      List<ChunkLocation> chunks;
      try {
        chunks = PackWriter.decodeIndex(pack, idx);
        Digest named =
            BlobNames.packDigest(pack).orElseThrow(() -> new IOException("not a pack name"));
        if (!named.algorithm().digest(idx).equals(named)) {
          throw new IOException("its chunk list does not match the digest the pack is named by");
        }
      } catch (IOException | IllegalArgumentException e) {
        corruptChunks.add(pack + ": " + e.getMessage());
        continue;
      }
      if (!verifyChunks) {
        continue;
      }
      for (ChunkLocation c : chunks) {
        String problem = check(c);
        verified++;
        if (problem != null) {
          corrupt.add(c.digest());
          corruptChunks.add(
              "chunk " + c.digest() + " in " + pack + " at " + c.offset() + ": " + problem);
        }
      }
    }
    long forgotten = 0;
    if (!gone.isEmpty()) {
      forgotten += store.catalog().removePacks(gone);
    }
    if (!corrupt.isEmpty()) {
      forgotten += store.catalog().remove(corrupt);
    }
    checkImages(present, corrupt);
    return new ImageStore.FsckResult(
        packs.size(), verified, missingPacks, corruptChunks, forgotten, damagedImages);
  }

  /** Reads one chunk back and checks it; null if it is sound, else what is wrong. */
  private String check(ChunkLocation c) {
    try {
      byte[] stored = blobs.readFully(c.pack(), c.offset(), c.storedLength()).array();
      byte[] plain = c.codec().decode(stored, c.plainLength());
      Digest got = c.digest().algorithm().digest(plain);
      return got.equals(c.digest()) ? null : "content digest is " + got;
    } catch (IOException e) {
      return e.getMessage();
    }
  }

  /** Every tag readable, its index present and whole, its packs and chunks sound. */
  private void checkImages(Set<String> present, Set<Digest> corrupt) throws IOException {
    for (ImageRef ref : store.tags()) {
      Optional<TagDocument> tag;
      try {
        tag = store.readTag(ref);
      } catch (DamagedTagException e) {
        damagedImages.add(ref + ": its tag is unreadable (" + e.reason() + ")");
        continue;
      }
      if (tag.isEmpty()) {
        continue;
      }
      Digest d = tag.get().index();
      Optional<Path> file = blobs.localFile(BlobNames.index(d));
      if (file.isEmpty()) {
        damagedImages.add(ref + ": its index " + d.shortHex() + " is missing");
        continue;
      }
      try {
        store.verifier().verifyFully(file.get(), d);
      } catch (DamagedIndexException e) {
        damagedImages.add(ref + ": its index " + d.shortHex() + " is damaged (" + e.reason() + ")");
        continue;
      }
      if (tag.get().remote() != null) {
        continue; // its chunks live in a bucket
      }
      try (ImageIndex index = store.openIndex(d)) {
        long missing = index.packs().stream().filter(p -> !present.contains(p)).count();
        if (missing > 0) {
          damagedImages.add(
              ref + ": " + missing + " of its " + index.packs().size() + " packs are missing");
        } else if (!corrupt.isEmpty()) {
          long bad = index.allChunks().keySet().stream().filter(corrupt::contains).count();
          if (bad > 0) {
            damagedImages.add(ref + ": " + bad + " of its chunks are corrupt");
          }
        }
      }
    }
  }
}
