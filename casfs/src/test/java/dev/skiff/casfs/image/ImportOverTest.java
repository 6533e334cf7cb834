package dev.skiff.casfs.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.testing.Trees;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A build step imported over its parent's index is the same image, file by file, as the parent's
 * tree and the step's files imported whole; the parent's files are not stored or read again.
 */
class ImportOverTest {
  @TempDir Path tmp;

  private static void tree(Path root, boolean withChanges) throws Exception {
    Files.createDirectories(root.resolve("etc/conf.d"));
    Files.writeString(root.resolve("etc/hostname"), "base\n");
    Files.writeString(root.resolve("etc/conf.d/a.conf"), "a=1\n");
    byte[] big = new byte[3 << 20];
    new Random(7).nextBytes(big);
    Files.write(root.resolve("big.bin"), big);
    Files.write(root.resolve("empty"), new byte[0]);
    Files.createLink(root.resolve("etc/hostname.link"), root.resolve("etc/hostname"));
    Files.createSymbolicLink(root.resolve("host"), Path.of("etc/hostname"));
    try {
      Files.getFileAttributeView(
              root.resolve("etc/conf.d/a.conf"), UserDefinedFileAttributeView.class)
          .write("skiff.note", ByteBuffer.wrap("kept".getBytes()));
    } catch (java.io.IOException | UnsupportedOperationException e) {
      // a filesystem without user xattrs: the rest still compares
    }
    if (withChanges) {
      applyChanges(root);
    }
  }

  private static void applyChanges(Path root) throws Exception {
    Files.createDirectories(root.resolve("app/lib"));
    Files.writeString(root.resolve("app/lib/new.py"), "print('new')\n");
    Files.writeString(root.resolve("etc/conf.d/b.conf"), "b=2\n");
  }

  @Test
  void aStepOverItsParentIsTheWholeTreeImportedAgain() throws Exception {
    Path base = tmp.resolve("base");
    tree(base, false);
    Path diff = tmp.resolve("diff");
    Files.createDirectories(diff.resolve("etc/conf.d"));
    applyChanges(diff);
    Path whole = tmp.resolve("whole");
    tree(whole, true);
    try (ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      store.importImage(base.toString(), ImageRef.parse("base:1"), ImportProgress.NONE);
      var over =
          store.importOver(
              store.resolve(ImageRef.parse("base:1")).orElseThrow(),
              diff,
              false,
              null,
              "a step",
              ImageRef.parse("over:1"));
      store.importImage(whole.toString(), ImageRef.parse("whole:1"), ImportProgress.NONE);
      assertEquals(
          Trees.ofImage(store, ImageRef.parse("whole:1")),
          Trees.ofImage(store, ImageRef.parse("over:1")));
      assertTrue(
          Trees.ofImage(store, ImageRef.parse("over:1")).stream()
              .anyMatch(l -> l.startsWith("etc/hostname ") && l.contains("nlink=2")),
          "the parent's hard links kept");
      // only the step's own bytes went through the importer: the 3 MiB file was not read again
      assertTrue(over.logicalBytes() < 1024, "read " + over.logicalBytes() + " bytes");
      assertEquals(0, over.newChunks());
    }
  }
}
