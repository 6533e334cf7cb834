package dev.skiff.casfs.image;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.index.Inode;
import dev.skiff.casfs.pack.ChunkCatalog;
import dev.skiff.casfs.store.BlobNames;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.BlobStores;
import dev.skiff.casfs.testing.Reads;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Layer flattening, chunking, dedup and the index, without a mount. */
class ImportTest {
  @TempDir Path dir;

  BlobStore store;
  ChunkCatalog catalog;
  ImageImporter importer;
  final List<ImageIndex> opened = new ArrayList<>();

  @BeforeEach
  void setUp() throws IOException {
    store = BlobStores.local(dir.resolve("blobs"));
    catalog = ChunkCatalog.open(dir.resolve("catalog"), DigestAlgorithm.XXH3_128);
    importer =
        new ImageImporter(store, catalog, dir.resolve("tmp"), ImageImporter.Options.defaults());
  }

  @AfterEach
  void tearDown() throws IOException {
    opened.forEach(ImageIndex::close);
    catalog.close();
    store.close();
  }

  ImportResult importLayers(byte[]... layers) throws IOException {
    return importer.importFrom(new LayeredSource(null, layers), ImportProgress.NONE);
  }

  ImageFileSystem fs(ImportResult r) throws IOException {
    ImageIndex index = ImageIndex.open(store.localFile(BlobNames.index(r.index())).orElseThrow());
    opened.add(index);
    return new ImageFileSystem(index, new ChunkReader(store, 64 << 20, null, Runnable::run));
  }

  static Inode at(ImageFileSystem fs, String path) throws IOException {
    long ino = fs.index().resolve(path);
    return ino == 0 ? null : fs.getattr(ino);
  }

  static String read(ImageFileSystem fs, String path) throws IOException {
    return new String(Reads.readAll(fs, path), UTF_8);
  }

  @Test
  void laterLayersWinAndWhiteoutsHideOnlyLowerLayers() throws IOException {
    byte[] l1 =
        new Tars()
            .dir("a", 0755)
            .file("a/keep", "1")
            .file("a/gone", "1")
            .dir("opq", 0755)
            .file("opq/lower", "1")
            .dir("opq/sub", 0755)
            .file("opq/sub/deep", "1")
            .file("f2d", "file")
            .dir("d2f", 0755)
            .file("d2f/x", "1")
            .file("readd", "lower")
            .file("twice", "1")
            .bytes();
    byte[] l2 =
        new Tars()
            .file("a/.wh.gone", "")
            .file("opq/new", "upper")
            .file("opq/.wh..wh..opq", "")
            .dir("f2d", 0700)
            .file("f2d/inside", "now a dir")
            .file("d2f", "now a file")
            .file("readd", "upper")
            .file(".wh.readd", "")
            .file("twice", "first")
            .file("twice", "second")
            .bytes();
    ImageFileSystem fs = fs(importLayers(l1, l2));
    assertEquals("1", read(fs, "a/keep"));
    assertNull(at(fs, "a/gone"));
    assertEquals("upper", read(fs, "opq/new"));
    assertNull(at(fs, "opq/lower"));
    assertNull(at(fs, "opq/sub"));
    assertTrue(at(fs, "f2d").isDirectory());
    assertEquals(0700, at(fs, "f2d").mode() & 07777);
    assertEquals("now a dir", read(fs, "f2d/inside"));
    assertTrue(at(fs, "d2f").isRegular());
    assertEquals("upper", read(fs, "readd"), "a whiteout never hides what its own layer adds");
    assertEquals("second", read(fs, "twice"));
  }

  @Test
  void directoriesMergeAcrossLayersAndKeepTheirChildren() throws IOException {
    byte[] l1 = new Tars().dir("etc", 0755).file("etc/a", "a").bytes();
    byte[] l2 = new Tars().dir("etc", 0700).file("etc/b", "b").bytes();
    ImageFileSystem fs = fs(importLayers(l1, l2));
    assertEquals("a", read(fs, "etc/a"));
    assertEquals("b", read(fs, "etc/b"));
    assertEquals(0700, at(fs, "etc").mode() & 07777);
    assertEquals(2, at(fs, "etc").nlink());
  }

  @Test
  void directoryListingsStopAtTheirOwnEntriesFromAnyPosition() throws IOException {
    // Inodes are numbered depth first: a=2 with 124 files (3..126), b=127 (0x7f) with 5 files,
    // c=133 (0x85) with 5. A range scan that compares key bytes as signed runs from b into c,
    // since 0x85 sorts below 0x7f as a signed byte; positions past 127 test the same in the
    // position part of the key.
    Tars t = new Tars().dir("a", 0755);
    for (int i = 0; i < 124; i++) {
      t.file(String.format("a/entry-%03d", i), "x");
    }
    t.dir("b", 0755);
    for (int i = 0; i < 5; i++) {
      t.file("b/" + i, "y");
    }
    t.dir("c", 0755);
    for (int i = 0; i < 5; i++) {
      t.file("c/" + i, "z");
    }
    ImageFileSystem fs = fs(importLayers(t.bytes()));
    long a = fs.index().resolve("a");
    long b = fs.index().resolve("b");
    assertEquals(127, b, "precondition: b's inode number just below 0x80");
    assertEquals(133, fs.index().resolve("c"), "precondition: c's inode number above 0x80");
    List<String> names = new ArrayList<>();
    fs.readdir(b, 0, (pos, name, ino) -> names.add(new String(name, UTF_8)));
    assertEquals(List.of("0", "1", "2", "3", "4"), names);
    for (int from : new int[] {0, 1, 100, 123, 124, 200}) {
      List<Integer> seen = new ArrayList<>();
      fs.readdir(a, from, (pos, name, ino) -> seen.add(pos));
      assertEquals(Math.max(0, 124 - from), seen.size(), "entries of a from " + from);
    }
  }

  @Test
  void hardlinksShareOneInodeWithTheRightLinkCount() throws IOException {
    byte[] l1 = new Tars().file("a", "shared").hardlink("b", "a").hardlink("c", "./a").bytes();
    ImageFileSystem fs = fs(importLayers(l1));
    Inode a = at(fs, "a");
    assertEquals(a.ino(), at(fs, "b").ino());
    assertEquals(a.ino(), at(fs, "c").ino());
    assertEquals(3, a.nlink());
    assertEquals("shared", read(fs, "c"));
  }

  @Test
  void largeFilesAreChunkedAndReadsCrossChunkBoundaries() throws IOException {
    byte[] big = new byte[3 * (1 << 20) + 77];
    new SplittableRandom(1).nextBytes(big);
    ImageFileSystem fs = fs(importLayers(new Tars().file("big", big, 0644).bytes()));
    Inode n = at(fs, "big");
    assertEquals(4, n.chunkCount());
    ByteBuffer b = ByteBuffer.allocate(100);
    fs.read(n.ino(), (1 << 20) - 50, 100, b);
    byte[] want = new byte[100];
    System.arraycopy(big, (1 << 20) - 50, want, 0, 100);
    assertArrayEquals(want, b.array());
    ByteBuffer tail = ByteBuffer.allocate(1000);
    assertEquals(77, fs.read(n.ino(), 3L << 20, 1000, tail));
  }

  @Test
  void chunksAreStoredOnceWithinAndAcrossImages() throws IOException {
    byte[] big = new byte[2 << 20];
    new SplittableRandom(2).nextBytes(big);
    ImportResult first = importLayers(new Tars().file("x", big, 0644).file("y", big, 0644).bytes());
    assertEquals(4, first.chunkRefs());
    assertEquals(2, first.newChunks(), "the second copy of the same bytes stores nothing");
    ImportResult second =
        importLayers(new Tars().file("other-name", big, 0644).file("z", "new small").bytes());
    assertEquals(0, second.newChunks(), "a chunk already in the store is never stored again");
    ImportResult again = importLayers(new Tars().file("x", big, 0644).file("y", big, 0644).bytes());
    assertEquals(first.index(), again.index(), "the same image gives the same index");
    assertEquals(0, again.newBytes(), "importing the same image twice stores nothing new");
  }

  @Test
  void aSha256StoreNamesEverythingBySha256() throws IOException {
    ImageImporter.Options d = ImageImporter.Options.defaults();
    ImageImporter.Options sha =
        new ImageImporter.Options(
            DigestAlgorithm.SHA256,
            d.chunkSize(),
            d.inlineLimit(),
            d.packTarget(),
            d.zstdLevel(),
            d.maxExpansion());
    try (ChunkCatalog shaCatalog =
        ChunkCatalog.open(dir.resolve("catalog-sha"), DigestAlgorithm.SHA256)) {
      ImageImporter shaImporter = new ImageImporter(store, shaCatalog, dir.resolve("tmp"), sha);
      byte[] big = new byte[(1 << 20) + 10];
      new SplittableRandom(4).nextBytes(big);
      ImportResult r =
          shaImporter.importFrom(
              new LayeredSource(null, new Tars().file("f", big, 0644).bytes()),
              ImportProgress.NONE);
      assertEquals(DigestAlgorithm.SHA256, r.index().algorithm());
      ImageFileSystem fs = fs(r);
      assertEquals(DigestAlgorithm.SHA256, fs.index().algorithm());
      assertEquals(
          DigestAlgorithm.SHA256, fs.index().chunk(at(fs, "f").ino(), 0).digest().algorithm());
      ByteBuffer b = ByteBuffer.allocate(big.length);
      fs.read(at(fs, "f").ino(), 0, big.length, b);
      assertArrayEquals(big, b.array());
    }
  }

  @Test
  void compressibleChunksAreStoredCompressed() throws IOException {
    byte[] text = "a line of very compressible text\n".repeat(60000).getBytes(UTF_8);
    ImportResult r = importLayers(new Tars().file("t", text, 0644).bytes());
    assertTrue(r.newBytes() < text.length / 10, "stored " + r.newBytes() + " of " + text.length);
    assertEquals(new String(text, UTF_8), read(fs(r), "t"));
  }

  @Test
  void theIndexKeepsConfigSymlinksAndSmallFilesInline() throws IOException {
    byte[] config = "{\"config\":{\"Env\":[\"A=1\"],\"Cmd\":[\"sh\"]}}".getBytes(UTF_8);
    ImportResult r =
        importer.importFrom(
            new LayeredSource(
                config, new Tars().file("small", "tiny").symlink("link", "../target").bytes()),
            ImportProgress.NONE);
    ImageFileSystem fs = fs(r);
    assertTrue(at(fs, "small").inline());
    assertArrayEquals("../target".getBytes(UTF_8), fs.readlink(at(fs, "link").ino()));
    assertEquals(new String(config, UTF_8), fs.index().meta("config"));
    assertEquals(0, store.list("packs/").size(), "nothing but inline data: no pack");
  }

  @Test
  void aFreshCatalogIsRebuiltFromPackIndexes() throws IOException {
    byte[] big = new byte[1 << 20];
    new SplittableRandom(3).nextBytes(big);
    importLayers(new Tars().file("x", big, 0644).bytes());
    catalog.close();
    Path fresh = dir.resolve("catalog2");
    catalog = ChunkCatalog.open(fresh, DigestAlgorithm.XXH3_128);
    assertEquals(1, catalog.rebuild(store));
    assertNotNull(catalog.find(DigestAlgorithm.XXH3_128.digest(big)));
    assertTrue(Files.exists(fresh));
  }

  @Test
  void uncompressedLayersWithFilesOfAnySizeImport() throws IOException {
    // Tar pads each file to 512 bytes. Padding skipped after a large read (which bypasses the read
    // buffer) was never hashed, so layers like this one were refused as "layer digest mismatch".
    byte[] tar =
        new Tars()
            .file("a", "x")
            .file("b", new byte[513], 0644)
            .file("big", new byte[300_001], 0644)
            .file("c", "odd sizes")
            .bytes();
    Path layout =
        dev.skiff.casfs.testing.OciLayouts.write(
            dir.resolve("oci"), "t", "application/vnd.oci.image.layer.v1.tar", false, tar);
    ImportResult r = importer.importFrom(layout + ":t", ImportProgress.NONE);
    assertEquals(4, r.files());
  }

  @Test
  void aTreeFarDeeperThanTheJavaStackImports() throws IOException {
    String deep = "d/".repeat(100_000) + "f";
    ImportResult r = importLayers(new Tars().file(deep, "at the bottom").bytes());
    ImageIndex index = ImageIndex.open(store.localFile(BlobNames.index(r.index())).orElseThrow());
    opened.add(index);
    assertEquals(100_002, index.inodeCount());
    assertTrue(index.resolve(deep) != 0);
  }
}
