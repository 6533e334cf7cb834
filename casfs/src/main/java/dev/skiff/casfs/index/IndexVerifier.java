package dev.skiff.casfs.index;

import static java.nio.charset.StandardCharsets.US_ASCII;

import dev.skiff.casfs.digest.Digest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Decides whether an image index file may be used, so that a damaged index is an error and never
 * content: small files' bytes and symlink targets live in the index itself, where no chunk digest
 * guards them.
 *
 * <p>Two checks. The structure first ({@link #checkStructure}): LMDB's meta pages must be there and
 * name no page past the end of the file, otherwise mapping the file would fault the JVM (SIGBUS) on
 * the first lookup. Then the bytes against the digest that names the index.
 *
 * <p>Hashing reads the whole file: about 85 ms for a 10 MiB index in a fresh JVM (3 ms once the JIT
 * has warmed), which every cold start through the CLI would pay. So a verification is remembered in
 * a stamp (one small file per index under the stamp directory) recording the file's device, inode,
 * size, modification and change times. An open whose {@code stat} matches the stamp skips the hash.
 * Any write to the file, a truncation, a replacement or a rename onto it changes its ctime, which
 * no system call can set back, so a changed file is hashed again and refused. Not covered: bytes
 * changed beneath the filesystem (a failing disk), which the filesystem must catch. {@link
 * #verifyFully} ignores stamps (fsck).
 *
 * <p>Thread safe; stamps are written to a temporary name and renamed.
 */
public final class IndexVerifier {
  private static final int META_PAGES = 2;
  private static final int MAGIC = 0xBEEFC0DE;

  private final Path stamps;

  /**
   * @param stamps where verifications are remembered (created on first use)
   */
  public IndexVerifier(Path stamps) {
    this.stamps = stamps;
  }

  /** Checks {@code file} against {@code expected}, hashing it unless a stamp shows it unchanged. */
  public void verify(Path file, Digest expected) throws IOException {
    String identity = identity(file);
    Path stamp = stampOf(expected);
    try {
      if (Files.readString(stamp, US_ASCII).equals(identity)) {
        return;
      }
    } catch (NoSuchFileException e) {
      // never verified here
    }
    verifyFully(file, expected);
    remember(file, expected, identity);
  }

  /** Checks {@code file} against {@code expected} by hashing it, whatever the stamps say. */
  public void verifyFully(Path file, Digest expected) throws IOException {
    checkStructure(file);
    Digest got;
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size());
      got = expected.algorithm().digest(map);
    }
    if (!got.equals(expected)) {
      Files.deleteIfExists(stampOf(expected));
      throw new DamagedIndexException(
          file,
          "its content does not match its digest (content "
              + got.shortHex()
              + ", named "
              + expected.shortHex()
              + ")");
    }
  }

  /**
   * Records that {@code file} holds exactly the bytes {@code digest} names: for a writer that has
   * just hashed what it wrote (an import, a pull), so that the first open does not hash it again.
   */
  public void remember(Path file, Digest digest) throws IOException {
    remember(file, digest, identity(file));
  }

  private void remember(Path file, Digest digest, String identity) throws IOException {
    Files.createDirectories(stamps);
    Path tmp = Files.createTempFile(stamps, ".stamp-", ".tmp");
    try {
      Files.writeString(tmp, identity, US_ASCII);
      Files.move(
          tmp,
          stampOf(digest),
          StandardCopyOption.ATOMIC_MOVE,
          StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /** Forgets the stamp of an index (removed by gc). */
  public void forget(Digest digest) throws IOException {
    Files.deleteIfExists(stampOf(digest));
  }

  private Path stampOf(Digest d) {
    return stamps.resolve(d.algorithm().label() + "-" + d.hex());
  }

  private static String identity(Path file) throws IOException {
    Map<String, Object> a =
        Files.readAttributes(
            file, "unix:dev,ino,size,lastModifiedTime,ctime", LinkOption.NOFOLLOW_LINKS);
    return a.get("dev")
        + " "
        + a.get("ino")
        + " "
        + a.get("size")
        + " "
        + ((FileTime) a.get("lastModifiedTime")).to(TimeUnit.NANOSECONDS)
        + " "
        + ((FileTime) a.get("ctime")).to(TimeUnit.NANOSECONDS);
  }

  /**
   * Checks that {@code file} is an LMDB environment whose pages are all in the file: both meta
   * pages present with LMDB's magic, a sane page size, a size that is a whole number of pages, and
   * the newest meta's last page inside the file. LMDB maps the file and trusts these numbers; a
   * truncated file would fault the JVM instead of failing a call.
   */
  public static void checkStructure(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      if (size == 0) {
        throw new DamagedIndexException(file, "it is empty");
      }
      ByteBuffer first = metaPage(ch, 0);
      if (first == null || first.getInt(16) != MAGIC) {
        throw new DamagedIndexException(
            file,
            "it is not an image index (no LMDB meta page at the start of its " + size + " bytes)");
      }
      int pageSize = first.getInt(40);
      if (pageSize < 512 || pageSize > 65536 || Integer.bitCount(pageSize) != 1) {
        throw new DamagedIndexException(file, "its meta page names a page size of " + pageSize);
      }
      if (size < (long) META_PAGES * pageSize) {
        throw new DamagedIndexException(
            file,
            "it is truncated ("
                + size
                + " bytes, less than the "
                + META_PAGES
                + " pages of "
                + pageSize
                + " bytes every index has)");
      }
      if (size % pageSize != 0) {
        throw new DamagedIndexException(
            file,
            "it is truncated ("
                + size
                + " bytes is not a whole number of "
                + pageSize
                + "-byte pages)");
      }
      long lastPage = -1;
      long newest = -1;
      for (int p = 0; p < META_PAGES; p++) {
        ByteBuffer meta = metaPage(ch, (long) p * pageSize);
        if (meta == null || meta.getInt(16) != MAGIC) {
          throw new DamagedIndexException(file, "its meta page " + p + " is damaged");
        }
        long txn = meta.getLong(144);
        if (txn > newest) {
          newest = txn;
          lastPage = meta.getLong(136);
        }
      }
      if (lastPage < META_PAGES - 1 || lastPage >= size / pageSize) {
        throw new DamagedIndexException(
            file,
            "it is truncated (its pages run to page "
                + lastPage
                + ", the file holds "
                + size / pageSize
                + ")");
      }
    }
  }

  /** The head of a meta page (page header and MDB_meta, little-endian), or null past the end. */
  private static ByteBuffer metaPage(FileChannel ch, long at) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(152).order(ByteOrder.LITTLE_ENDIAN);
    while (b.hasRemaining()) {
      if (ch.read(b, at + b.position()) < 0) {
        return null;
      }
    }
    return b;
  }
}
