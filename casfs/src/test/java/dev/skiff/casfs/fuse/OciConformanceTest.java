package dev.skiff.casfs.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.TestImages;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A real three-layer image built with umoci (see make-image.sh: every file type, modes, large ids,
 * xattrs, devices, odd names, hardlinks, whiteouts, opaque dirs, replacements), imported from each
 * container format and mounted, must show exactly the tree {@code umoci unpack} produces.
 */
@Tag("fuse")
class OciConformanceTest {
  static Path image;
  static String reference;

  @TempDir static Path tmp;

  @BeforeAll
  static void build() throws Exception {
    Environment.requireImageTools();
    image = TestImages.build();
    reference = TestImages.manifest(image.resolve("bundle/rootfs"));
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({
    "oci layout,     layout:t",
    "docker archive, docker.tar",
    "oci archive,    oci.tar:t",
    "rootfs tarball, rootfs.tar.gz",
    "directory,      bundle/rootfs"
  })
  void mountedTreeEqualsUmociUnpack(String kind, String source) throws Exception {
    try (ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      store.importImage(
          image.resolve(source).toString(),
          ImageRef.parse("conformance:" + kind.replace(' ', '-')),
          ImportProgress.NONE);
      try (Mounted m =
          new Mounted(
              store,
              "conformance:" + kind.replace(' ', '-'),
              tmp.resolve("mnt-" + kind.hashCode()))) {
        assertEquals(
            reference,
            TestImages.manifest(m.dir),
            "mounted tree differs from umoci unpack (" + kind + ")");
      }
    }
  }
}
