package dev.skiff.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Reading a file inside an image root as the image sees it: symlinks, absolute or with {@code ..},
 * never lead out of the root. Both ways (openat2 with RESOLVE_IN_ROOT, and the walk used where the
 * kernel has no openat2), on plain directories, without root.
 */
@Timeout(20)
class ImageRootReaderTest {
  enum Way {
    OPENAT2,
    WALK;

    Optional<String> read(Path root, String path) throws IOException {
      return bytes(root, path, 1 << 20).map(b -> new String(b, StandardCharsets.UTF_8));
    }

    Optional<byte[]> bytes(Path root, String path, int max) throws IOException {
      if (this == OPENAT2) {
        assumeTrue(ImageRootReader.hasOpenat2(), "this kernel has no openat2");
        return ImageRootReader.readWithOpenat2(root, path, max);
      }
      return ImageRootReader.readByWalking(root, path, max);
    }
  }

  @TempDir Path tmp;

  Path root;

  /** A file outside the root, what an escaping symlink would reach. */
  Path secret;

  @BeforeEach
  void setUp() throws IOException {
    root = Files.createDirectories(tmp.resolve("image"));
    Files.createDirectories(root.resolve("etc"));
    Files.writeString(root.resolve("etc/passwd"), "root:x:0:0::/:/bin/sh\n");
    secret =
        Files.writeString(
            Files.createDirectories(tmp.resolve("host/etc")).resolve("shadow"), "host secret\n");
  }

  /** {@code secret}'s host path as it would read inside the root, where a re-rooted link leads. */
  private Path mirror(Path hostPath) throws IOException {
    Path inside = root.resolve(hostPath.toString().substring(1));
    Files.createDirectories(inside.getParent());
    return inside;
  }

  private Path link(String at, String target) throws IOException {
    Path l = root.resolve(at);
    Files.createDirectories(l.getParent());
    return Files.createSymbolicLink(l, Path.of(target));
  }

  @ParameterizedTest
  @EnumSource(Way.class)
  void aPlainFileReadsAsItIs(Way way) throws IOException {
    assertEquals(Optional.of("root:x:0:0::/:/bin/sh\n"), way.read(root, "/etc/passwd"));
    assertEquals(Optional.of("root:x:0:0::/:/bin/sh\n"), way.read(root, "etc/passwd"));
    assertEquals(Optional.of("root:x:0:0::/:/bin/sh\n"), way.read(root, "/./etc//passwd"));
  }

  @ParameterizedTest
  @EnumSource(Way.class)
  void aMissingFileIsEmptyNotAnError(Way way) throws IOException {
    assertEquals(Optional.empty(), way.read(root, "/etc/group"));
    assertEquals(Optional.empty(), way.read(root, "/no/such/dir/passwd"));
    assertEquals(Optional.empty(), way.read(root, "/etc/passwd/under-a-file"));
    link("etc/dangling", "/nowhere");
    assertEquals(Optional.empty(), way.read(root, "/etc/dangling"));
  }

  @ParameterizedTest
  @EnumSource(Way.class)
  void anAbsoluteSymlinkResolvesInsideTheRoot(Way way) throws IOException {
    link("etc/group", secret.toString());
    assertEquals(Optional.empty(), way.read(root, "/etc/group"));
    Files.writeString(mirror(secret), "inside the image\n");
    assertEquals(Optional.of("inside the image\n"), way.read(root, "/etc/group"));
  }

  @ParameterizedTest
  @EnumSource(Way.class)
  void dotDotStopsAtTheRoot(Way way) throws IOException {
    link("etc/group", "../".repeat(root.getNameCount() + 5) + secret.toString().substring(1));
    assertEquals(Optional.empty(), way.read(root, "/etc/group"));
    assertEquals(Optional.empty(), way.read(root, "/../../../../../../.." + secret));
    Files.writeString(mirror(secret), "inside the image\n");
    assertEquals(Optional.of("inside the image\n"), way.read(root, "/etc/group"));
    assertEquals(Optional.of("root:x:0:0::/:/bin/sh\n"), way.read(root, "/../../etc/passwd"));
  }

  @ParameterizedTest
  @EnumSource(Way.class)
  void aSymlinkedDirectoryResolvesInsideTheRoot(Way way) throws IOException {
    Path hostDir = secret.getParent();
    Files.move(root.resolve("etc"), root.resolve("real-etc"));
    link("etc", hostDir.toString()); // absolute, to the host's directory holding "shadow"
    assertEquals(Optional.empty(), way.read(root, "/etc/shadow"));
    Files.createDirectories(mirror(hostDir.resolve("x")));
    Files.writeString(
        root.resolve(hostDir.toString().substring(1)).resolve("shadow"), "image shadow\n");
    assertEquals(Optional.of("image shadow\n"), way.read(root, "/etc/shadow"));
    // Relative, and '..' after it is taken from where the link leads (as the kernel does).
    Files.delete(root.resolve("etc"));
    link("etc", "real-etc");
    assertEquals(Optional.of("root:x:0:0::/:/bin/sh\n"), way.read(root, "/etc/passwd"));
    link("deep/link", "../real-etc");
    assertEquals(Optional.of("root:x:0:0::/:/bin/sh\n"), way.read(root, "/deep/link/passwd"));
    link("a/b/up", "../../real-etc");
    assertEquals(
        Optional.of("root:x:0:0::/:/bin/sh\n"), way.read(root, "/a/b/up/../real-etc/passwd"));
  }

  @ParameterizedTest
  @EnumSource(Way.class)
  void symlinkLoopsFailInsteadOfSpinning(Way way) throws IOException {
    link("etc/a", "b");
    link("etc/b", "/etc/a");
    link("etc/self", "self");
    for (String p : new String[] {"/etc/a", "/etc/self", "/etc/self/passwd"}) {
      IOException e = assertThrows(IOException.class, () -> way.read(root, p));
      assertTrue(e.getMessage().contains("symbolic links"), e.getMessage());
    }
    // A long chain that ends is followed up to the kernel's limit of 40, and no further.
    for (int i = 0; i < 45; i++) {
      link("chain/" + i, i == 44 ? "/etc/passwd" : Integer.toString(i + 1));
    }
    assertEquals(Optional.of("root:x:0:0::/:/bin/sh\n"), way.read(root, "/chain/10"));
    assertThrows(IOException.class, () -> way.read(root, "/chain/0"));
  }

  @ParameterizedTest
  @EnumSource(Way.class)
  void onlyRegularFilesOfABoundedSizeAreRead(Way way) throws Exception {
    IOException e = assertThrows(IOException.class, () -> way.read(root, "/etc"));
    assertTrue(e.getMessage().contains("not a regular file"), e.getMessage());
    Process p = new ProcessBuilder("mkfifo", root.resolve("etc/fifo").toString()).start();
    assertEquals(0, p.waitFor());
    e =
        assertThrows(
            IOException.class, () -> way.read(root, "/etc/fifo")); // and does not wait for a writer
    assertTrue(e.getMessage().contains("not a regular file"), e.getMessage());
    Files.write(root.resolve("etc/big"), new byte[5000]);
    assertEquals(5000, way.bytes(root, "/etc/big", 5000).orElseThrow().length);
    e = assertThrows(IOException.class, () -> way.bytes(root, "/etc/big", 4999));
    assertTrue(e.getMessage().contains("larger than"), e.getMessage());
  }

  @Test
  void theReaderUsesOpenat2WhereTheKernelHasIt() throws IOException {
    // Linux 5.6 and later; the walk is only for older kernels (ENOSYS).
    Files.writeString(mirror(secret), "inside the image\n");
    link("etc/group", secret.toString());
    assertEquals(
        "inside the image\n",
        new String(ImageRootReader.read(root, "/etc/group").orElseThrow(), StandardCharsets.UTF_8));
  }
}
