package dev.skiff.casfs.fuse;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.store.BlobStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/** An image mounted for a test: index, chunk reader, filesystem and mount, closed together. */
final class Mounted implements AutoCloseable {
  final ImageIndex index;
  final ChunkReader chunks;
  final ImageFileSystem fs;
  final FuseMount mount;
  final Path dir;
  private final ExecutorService prefetch = Executors.newFixedThreadPool(2);

  Mounted(ImageStore store, String ref, Path dir) throws IOException {
    this(store, ref, dir, store.blobs(), FuseMount.Options.defaults());
  }

  Mounted(ImageStore store, String ref, Path dir, BlobStore blobs, FuseMount.Options options)
      throws IOException {
    this.dir = Files.createDirectories(dir);
    this.index = store.openIndex(ImageRef.parse(ref));
    this.chunks = new ChunkReader(blobs, 256 << 20, null, prefetch);
    this.fs = new ImageFileSystem(index, chunks);
    FuseMount m;
    try {
      m = FuseMount.mount(dir, fs, options);
    } catch (IOException | RuntimeException e) {
      index.close();
      prefetch.shutdownNow();
      throw e;
    }
    this.mount = m;
  }

  Path path(String p) {
    return dir.resolve(p);
  }

  @Override
  public void close() throws IOException {
    try {
      mount.close();
    } finally {
      prefetch.shutdownNow();
      index.close();
    }
  }
}
