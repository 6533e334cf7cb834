package dev.skiff.casfs.image;

/** Receives import progress; called from the importing thread after each file. */
@FunctionalInterface
public interface ImportProgress {
  ImportProgress NONE = (files, bytes, layer, layers) -> {};

  void update(long files, long logicalBytes, int layer, int layers);
}
