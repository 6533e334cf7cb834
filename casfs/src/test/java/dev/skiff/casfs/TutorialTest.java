package dev.skiff.casfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.image.ImportResult;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.index.Inode;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The main casfs API in the order a user meets it. Read top to bottom. */
class TutorialTest {
  @TempDir Path tmp;

  @Test
  void importListOpenAndRead() throws Exception {
    // Something to import: any directory, tarball, OCI layout or docker-save archive.
    Path rootfs = Files.createDirectories(tmp.resolve("rootfs/etc"));
    Files.writeString(rootfs.resolve("os-release"), "NAME=Skiff\n");

    // A store lives in a home directory (SKIFF_HOME); it is created on first use.
    try (ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      // Import and tag. The tag is set only once the index and every pack are stored.
      ImportResult r =
          store.importImage(
              tmp.resolve("rootfs").toString(), ImageRef.parse("demo:1"), ImportProgress.NONE);
      assertEquals(1, r.files());

      // Tagged images, with their sizes and what their import stored.
      ImageInfo info = store.images().get(0);
      assertEquals("demo:1", info.ref().toString());
      assertEquals(r.index(), info.index());

      // The image is its index: open it and walk it without fetching any file contents.
      try (ImageIndex index = store.openIndex(ImageRef.parse("demo:1"))) {
        long ino = index.resolve("etc/os-release");
        assertTrue(ino != 0);

        // File bytes come through a chunk reader (memory cache -> optional disk cache -> store).
        ChunkReader chunks = new ChunkReader(store.blobs(), 64 << 20, null, Runnable::run);
        ImageFileSystem fs = new ImageFileSystem(index, chunks);
        Inode n = fs.getattr(ino);
        ByteBuffer buf = ByteBuffer.allocate((int) n.size());
        fs.read(ino, 0, buf.capacity(), buf);
        assertEquals("NAME=Skiff\n", new String(buf.array(), StandardCharsets.UTF_8));

        // FuseMount.mount(mountpoint, fs, FuseMount.Options.defaults()) puts the same tree in
        // the kernel; see fuse.MountTest.
      }
    }
  }
}
