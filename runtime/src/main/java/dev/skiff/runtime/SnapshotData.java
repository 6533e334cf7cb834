package dev.skiff.runtime;

import dev.skiff.casfs.DerivedData;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.util.Trees;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The memory snapshots a home keeps for its images ({@code HOME/snapshots/ALG/HEX/NAME/}), so that
 * garbage collection removes them with the image. Copies in a bucket belong to the bucket.
 */
public final class SnapshotData implements DerivedData {
  @Override
  public String kind() {
    return "snapshots";
  }

  static Path root(ImageStore store) {
    return store.home().resolve("snapshots");
  }

  @Override
  public Set<Digest> indexes(ImageStore store) throws IOException {
    Set<Digest> out = new HashSet<>();
    for (Path alg : list(root(store))) {
      for (Path hex : list(alg)) {
        try {
          out.add(Digest.parse(alg.getFileName() + ":" + hex.getFileName()));
        } catch (IllegalArgumentException notOurs) {
          // not a snapshot directory
        }
      }
    }
    return out;
  }

  @Override
  public int remove(ImageStore store, Digest index, boolean dryRun) throws IOException {
    Path dir = root(store).resolve(index.algorithm().label()).resolve(index.hex());
    int n =
        (int) list(dir).stream().filter(p -> !p.getFileName().toString().startsWith(".")).count();
    if (!dryRun) {
      Trees.delete(dir);
    }
    return n;
  }

  private static List<Path> list(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(Files::isDirectory).toList();
    }
  }
}
