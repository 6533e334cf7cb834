package dev.skiff.casfs.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.testing.OciLayouts;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad input is refused with a one-line message naming the archive and the entry, and the store
 * stays consistent: no tag, no index, no scratch files; a good import afterwards works.
 */
class ImportErrorsTest {
  @TempDir Path dir;

  ImageStore store;

  @BeforeEach
  void open() throws IOException {
    store = ImageStore.open(dir.resolve("home"));
  }

  @AfterEach
  void close() throws IOException {
    store.close();
  }

  private ImportException refused(Path source, String... expected) throws IOException {
    ImportException e =
        assertThrows(
            ImportException.class,
            () ->
                store.importImage(source.toString(), ImageRef.parse("bad:1"), ImportProgress.NONE));
    assertTrue(
        e.getMessage().contains(source.toString().replaceAll(":.*", ""))
            || e.getMessage().contains("layer"),
        "message names the archive: " + e.getMessage());
    for (String s : expected) {
      assertTrue(
          e.getMessage().contains(s),
          "message '" + e.getMessage() + "' should contain '" + s + "'");
    }
    assertEquals(-1, e.getMessage().indexOf('\n'), "one line");
    assertConsistent();
    return e;
  }

  private void assertConsistent() throws IOException {
    assertEquals(0, store.images().size(), "no tag points at a failed import");
    assertEquals(0, store.blobs().list("indexes/").size(), "no index was stored");
    try (var s = Files.list(store.scratch())) {
      assertEquals(0, s.count(), "no scratch files left behind");
    }
    // A good import still works on the same store.
    Path good =
        new Tars().file("ok", "fine").write(dir.resolve("good-" + System.nanoTime() + ".tar"));
    store.importImage(good.toString(), ImageRef.parse("good:1"), ImportProgress.NONE);
    assertTrue(store.untag(ImageRef.parse("good:1")));
    for (String idx : store.blobs().list("indexes/")) {
      store.blobs().delete(idx);
    }
  }

  @Test
  void truncatedGzipLayer() throws IOException {
    byte[] big = new byte[1 << 20];
    new java.util.Random(1).nextBytes(big);
    Path full =
        new Tars().file("a", big, 0644).file("b", "x").writeGzip(dir.resolve("full.tar.gz"));
    byte[] bytes = Files.readAllBytes(full);
    Path cut = Files.write(dir.resolve("cut.tar.gz"), Arrays.copyOf(bytes, bytes.length / 2));
    refused(cut, "truncated");
  }

  @Test
  void truncatedTarEntry() throws IOException {
    byte[] tar = new Tars().file("a", new byte[10000], 0644).bytes();
    refused(Files.write(dir.resolve("cut.tar"), Arrays.copyOf(tar, 4096)), "truncated");
  }

  @Test
  void aLayerThatLostOnlyItsEndImportsWhole() throws IOException {
    // umoci 0.4's layers end right after the last file's data: no padding, no end blocks.
    byte[] tar = new Tars().file("a", "hello").file("b", new byte[700], 0644).bytes();
    int end = 512 + 512 + 512 + 700; // a's header and block, b's header, b's data
    Path cut = Files.write(dir.resolve("no-end.tar"), Arrays.copyOf(tar, end));
    try (ImageStore s = ImageStore.open(dir.resolve("home-no-end"))) {
      var r = s.importImage(cut.toString(), ImageRef.parse("no-end:1"), ImportProgress.NONE);
      assertEquals(2, r.files());
    }
    // Cut one byte into b's data, it is truncated.
    refused(Files.write(dir.resolve("short.tar"), Arrays.copyOf(tar, end - 1)), "truncated");
  }

  @Test
  void corruptTarHeader() throws IOException {
    byte[] tar = new Tars().file("a", "hello").bytes();
    tar[100] = 'Z'; // inside the mode field: breaks the checksum
    refused(Files.write(dir.resolve("corrupt.tar"), tar), "checksum");
  }

  @Test
  void notAnArchiveAtAll() throws IOException {
    byte[] junk = new byte[4096];
    new java.util.Random(5).nextBytes(junk);
    refused(Files.write(dir.resolve("junk.bin"), junk), "not a tar");
  }

  @Test
  void gzipBomb() throws IOException {
    Path bomb = dir.resolve("bomb.tar.gz");
    try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(bomb), 1 << 16);
        TarArchiveOutputStream t = new TarArchiveOutputStream(o)) {
      t.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
      long size = 300L << 20;
      TarArchiveEntry e = new TarArchiveEntry("zeros");
      e.setSize(size);
      t.putArchiveEntry(e);
      byte[] zeros = new byte[1 << 20];
      for (long w = 0; w < size; w += zeros.length) {
        t.write(zeros);
      }
      t.closeArchiveEntry();
    }
    assertTrue(Files.size(bomb) < (1 << 20));
    assertTrue(refused(bomb, "decompression bomb", "200x") instanceof ExpansionLimitException);
  }

  @Test
  void pathsThatClimbOutOfTheRoot() throws IOException {
    for (String name : new String[] {"../escape", "a/../../escape", "/etc/passwd"}) {
      var bytes = new java.io.ByteArrayOutputStream();
      try (TarArchiveOutputStream t = new TarArchiveOutputStream(bytes)) {
        TarArchiveEntry e = new TarArchiveEntry(name, true);
        e.setSize(1);
        t.putArchiveEntry(e);
        t.write('x');
        t.closeArchiveEntry();
      }
      Path p = Files.write(dir.resolve("escape-" + name.length() + ".tar"), bytes.toByteArray());
      refused(p, name, "escape");
    }
  }

  @Test
  void hardlinkToAMissingTarget() throws IOException {
    refused(
        new Tars().file("a", "x").hardlink("b", "nothing-here").write(dir.resolve("hl.tar")),
        "'b'".replace("'", ""),
        "missing target",
        "nothing-here");
  }

  @Test
  void symlinkTypeWeDoNotKnow() throws IOException {
    var bytes = new java.io.ByteArrayOutputStream();
    try (TarArchiveOutputStream t = new TarArchiveOutputStream(bytes)) {
      t.putArchiveEntry(new TarArchiveEntry("weird", TarConstants.LF_MULTIVOLUME));
      t.closeArchiveEntry();
    }
    refused(
        Files.write(dir.resolve("weird.tar"), bytes.toByteArray()),
        "weird",
        "unsupported tar entry type");
  }

  @Test
  void manifestPointingAtAMissingLayer() throws IOException {
    Path layout =
        OciLayouts.write(
            dir.resolve("oci"),
            "t",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            new Tars().file("a", "1").bytes(),
            new Tars().file("b", "2").bytes());
    String d = OciLayouts.layerDigest(layout, 1);
    Files.delete(OciLayouts.blob(layout, d));
    refused(Path.of(layout + ":t"), d, "missing layer");
  }

  @Test
  void unknownLayerMediaType() throws IOException {
    Path layout =
        OciLayouts.write(
            dir.resolve("oci"), "t", "application/x-mystery", new Tars().file("a", "1").bytes());
    refused(Path.of(layout + ":t"), "unknown layer media type", "application/x-mystery");
  }

  @Test
  void layerWhoseBytesDoNotMatchItsDigest() throws IOException {
    Path layout =
        OciLayouts.write(
            dir.resolve("oci"),
            "t",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            new Tars().file("a", "1").bytes());
    String d = OciLayouts.layerDigest(layout, 0);
    Files.write(OciLayouts.blob(layout, d), OciLayouts.gzip(new Tars().file("a", "2").bytes()));
    refused(Path.of(layout + ":t"), "digest mismatch", d);
  }

  @Test
  void unknownTag() throws IOException {
    Path layout =
        OciLayouts.write(
            dir.resolve("oci"),
            "t",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            new Tars().file("a", "1").bytes());
    refused(Path.of(layout + ":nope"), "no image tagged 'nope'");
  }

  @Test
  void compressedImageArchiveIsNotMistakenForARootfs() throws IOException {
    Path gz =
        new Tars()
            .file("manifest.json", "[{\"Config\":\"c.json\",\"Layers\":[\"l/layer.tar\"]}]")
            .file("c.json", "{}")
            .dir("l", 0755)
            .file("l/layer.tar", new Tars().file("a", "1").bytes(), 0644)
            .writeGzip(dir.resolve("saved.tar.gz"));
    refused(gz, "decompress it");
  }

  @Test
  void truncatedDockerArchive() throws IOException {
    byte[] layer = new Tars().file("a", new byte[20000], 0644).bytes();
    byte[] archive =
        new Tars()
            .file(
                "manifest.json",
                "[{\"Config\":\"c.json\",\"RepoTags\":[\"x:1\"],"
                    + "\"Layers\":[\"l/layer.tar\"]}]")
            .file("c.json", "{}")
            .file("l/layer.tar", layer, 0644)
            .bytes();
    refused(Files.write(dir.resolve("docker.tar"), Arrays.copyOf(archive, archive.length - 12000)));
  }

  // Found by a hostile test pass: headers that claim absurd things, metadata a mount could not
  // hand back, manifests and configs that are not what their digests name, and layouts that lead
  // out of themselves.

  /** A tar whose one file has a PAX header with {@code key=value}, written as a raw 'x' entry. */
  private static byte[] tarWithPax(String name, String key, String value, byte[] content)
      throws IOException {
    String body = " " + key + "=" + value + "\n";
    int len = body.length();
    while (Integer.toString(len).length() + body.length() != len) {
      len = Integer.toString(len).length() + body.length();
    }
    byte[] record = (len + body).getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
    var bytes = new java.io.ByteArrayOutputStream();
    try (TarArchiveOutputStream t = new TarArchiveOutputStream(bytes)) {
      TarArchiveEntry pax =
          new TarArchiveEntry("PaxHeaders/" + name, TarConstants.LF_PAX_EXTENDED_HEADER_LC);
      pax.setSize(record.length);
      t.putArchiveEntry(pax);
      t.write(record);
      t.closeArchiveEntry();
      TarArchiveEntry e = new TarArchiveEntry(name);
      e.setSize(content.length);
      t.putArchiveEntry(e);
      t.write(content);
      t.closeArchiveEntry();
    }
    return bytes.toByteArray();
  }

  @Test
  void aPaxSizeOfPetabytesIsRefusedBeforeAnythingIsSizedFromIt() throws IOException {
    for (long claim : new long[] {1L << 50, 1L << 51, Long.MAX_VALUE}) {
      byte[] tar = tarWithPax("huge", "size", Long.toString(claim), "x".repeat(3000).getBytes());
      refused(
          Files.write(dir.resolve("pax-" + claim + ".tar"), tar),
          "huge",
          "claims " + claim + " bytes");
    }
  }

  @Test
  void extendedAttributesAndSymlinksLinuxCouldNotHandBackAreRefused() throws IOException {
    refused(
        Files.write(
            dir.resolve("xname.tar"),
            tarWithPax("f", "SCHILY.xattr.user." + "n".repeat(300), "v", new byte[1])),
        "extended attribute name of 305 bytes");
    refused(
        Files.write(
            dir.resolve("xvalue.tar"),
            tarWithPax("f", "SCHILY.xattr.user.big", "v".repeat(70000), new byte[1])),
        "extended attribute user.big of 70000 bytes");
    refused(
        new Tars().symlink("s", "t/".repeat(2100)).write(dir.resolve("long-link.tar")),
        "symlink target of 4200 bytes");
  }

  @Test
  void aManifestOrConfigThatIsNotWhatItsDigestNamesIsRefused() throws IOException {
    Path layout =
        OciLayouts.write(
            dir.resolve("oci"),
            "t",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            new Tars().file("a", "1").bytes());
    String index = Files.readString(layout.resolve("index.json"));
    String m = index.replaceAll("(?s).*\"digest\":\"(sha256:[0-9a-f]+)\".*", "$1");
    String manifest = Files.readString(OciLayouts.blob(layout, m));
    String config =
        manifest.replaceAll("(?s).*\"config\":\\{[^}]*\"digest\":\"(sha256:[0-9a-f]+)\".*", "$1");
    Path configFile = OciLayouts.blob(layout, config);
    Files.writeString(configFile, Files.readString(configFile).replace("\"sh\"", "\"bash\""));
    refused(Path.of(layout + ":t"), "image config digest mismatch", config);

    Path other =
        OciLayouts.write(
            dir.resolve("oci2"),
            "t",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            new Tars().file("a", "1").bytes());
    Path manifestFile = OciLayouts.blob(other, m);
    Files.writeString(manifestFile, Files.readString(manifestFile) + " ");
    refused(Path.of(other + ":t"), "manifest digest mismatch", m);
  }

  @Test
  void aSymlinkedDirectoryInsideALayoutIsNotFollowedOutOfIt() throws IOException {
    Path layout =
        OciLayouts.write(
            dir.resolve("oci"),
            "t",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            new Tars().file("a", "1").bytes());
    Path outside = dir.resolve("outside");
    Files.move(layout.resolve("blobs"), outside);
    Files.createSymbolicLink(layout.resolve("blobs"), outside);
    refused(Path.of(layout + ":t"), "missing");
  }
}
