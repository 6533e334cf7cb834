package dev.skiff.casfs.testing;

import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.index.Inode;
import java.io.IOException;
import java.nio.ByteBuffer;

/** Reading whole files of an image through the filesystem core, without a mount. */
public final class Reads {
  private Reads() {}

  /** The bytes of the regular file at {@code path} (slash-separated, from the root). */
  public static byte[] readAll(ImageFileSystem fs, String path) throws IOException {
    long ino = fs.index().resolve(path);
    if (ino == 0) {
      throw new java.io.FileNotFoundException(path);
    }
    Inode n = fs.getattr(ino);
    ByteBuffer b = ByteBuffer.allocate((int) n.size());
    fs.read(n.ino(), 0, b.capacity(), b);
    return b.array();
  }
}
