package dev.skiff.runtime.build;

import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorInputStream;
import org.apache.commons.compress.compressors.xz.XZCompressorInputStream;

/**
 * {@code ADD} of a local tar archive (plain, gzip, bzip2, xz or zstd, told by its content, as
 * Docker tells it): unpacked into the destination as {@code tar -x} would, owners and modes as the
 * archive says. Entries are written under the destination only: names that climb out ({@code ..})
 * are refused, a leading {@code /} is dropped, an entry is never written through a link an earlier
 * entry (or source) made, and a directory is never replaced by a link or a file (that could turn a
 * path already written into one through a link): either would write outside the image's tree, on
 * the building host.
 */
final class AddArchive {
  private AddArchive() {}

  /** An extracted file's owner, applied after the step's files are made root's. */
  record Owner(Path path, int uid, int gid) {}

  /** A directory's time from the archive, set once everything under it is written. */
  private record DirTime(Path dir, FileTime time) {}

  private static final byte[] GZIP = {0x1f, (byte) 0x8b};
  private static final byte[] BZIP2 = {'B', 'Z', 'h'};
  private static final byte[] XZ = {(byte) 0xfd, '7', 'z', 'X', 'Z', 0};
  private static final byte[] ZSTD = {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd};

  /** Whether {@code file} is a tar archive, compressed or not. */
  static boolean isArchive(Path file) throws IOException {
    if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
      return false;
    }
    try (InputStream in = open(file)) {
      byte[] header = in.readNBytes(512);
      return header.length == 512
          && new String(header, 257, 5, StandardCharsets.US_ASCII).equals("ustar");
    } catch (IOException notCompressedThatWay) {
      return false; // a file that starts like a compressed one and is not: copied as it is
    }
  }

  /** The archive's bytes, decompressed as its first bytes say. */
  private static InputStream open(Path file) throws IOException {
    BufferedInputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
    try {
      in.mark(8);
      byte[] magic = in.readNBytes(6);
      in.reset();
      if (startsWith(magic, GZIP)) {
        return new GZIPInputStream(in, 1 << 16);
      }
      if (startsWith(magic, BZIP2)) {
        return new BZip2CompressorInputStream(in);
      }
      if (startsWith(magic, XZ)) {
        return new XZCompressorInputStream(in);
      }
      if (startsWith(magic, ZSTD)) {
        return new ZstdInputStreamNoFinalizer(in);
      }
      return in;
    } catch (IOException | RuntimeException e) {
      in.close();
      throw e;
    }
  }

  private static boolean startsWith(byte[] b, byte[] prefix) {
    return b.length >= prefix.length
        && Arrays.equals(b, 0, prefix.length, prefix, 0, prefix.length);
  }

  /**
   * Unpacks {@code archive} into directory {@code into}; returns the owners the archive gives.
   *
   * @param where the step, for messages
   */
  static List<Owner> extract(Path archive, Path into, String where) throws IOException {
    Files.createDirectories(into);
    List<Owner> owners = new ArrayList<>();
    List<DirTime> dirTimes = new ArrayList<>();
    try (TarArchiveInputStream tar = new TarArchiveInputStream(open(archive))) {
      for (TarArchiveEntry e; (e = tar.getNextEntry()) != null; ) {
        Path out = inside(into, e.getName(), archive, where);
        if (out.equals(into)) {
          continue; // "./": the destination itself
        }
        noLinkBelow(into, out.getParent(), archive.getFileName() + ": entry " + e.getName(), where);
        Files.createDirectories(out.getParent());
        if (Files.isDirectory(out, LinkOption.NOFOLLOW_LINKS)) {
          if (!e.isDirectory()) {
            throw new ImageBuilder.BuildException(
                where
                    + ": "
                    + archive.getFileName()
                    + ": entry "
                    + e.getName()
                    + " would replace a directory with a link or file");
          }
        } else if (Files.exists(out, LinkOption.NOFOLLOW_LINKS)) {
          Files.delete(out); // a later entry replaces an earlier file or link (never followed)
        }
        if (e.isDirectory()) {
          Files.createDirectories(out);
          dirTimes.add(new DirTime(out, e.getLastModifiedTime()));
        } else if (e.isSymbolicLink()) {
          Files.createSymbolicLink(out, Path.of(e.getLinkName()));
        } else if (e.isLink()) {
          Path target = inside(into, e.getLinkName(), archive, where);
          noLinkBelow(
              into,
              target.getParent(),
              archive.getFileName() + ": entry " + e.getLinkName(),
              where);
          if (!Files.isRegularFile(target, LinkOption.NOFOLLOW_LINKS)) {
            throw new ImageBuilder.BuildException(
                where
                    + ": "
                    + archive.getFileName()
                    + ": hard link "
                    + e.getName()
                    + " names "
                    + e.getLinkName()
                    + ", which is not a file unpacked before it");
          }
          Files.createLink(out, target);
          continue; // the link shares its target's owner, mode and time
        } else if (e.isFile()) {
          Files.copy(tar, out, StandardCopyOption.REPLACE_EXISTING);
          Files.setLastModifiedTime(out, e.getLastModifiedTime());
        } else {
          throw new ImageBuilder.BuildException(
              where
                  + ": "
                  + archive.getFileName()
                  + ": "
                  + e.getName()
                  + " is a device or pipe, which ADD does not unpack");
        }
        if (!e.isSymbolicLink()) {
          Files.setAttribute(out, "unix:mode", e.getMode() & 07777);
        }
        owners.add(new Owner(out, (int) e.getLongUserId(), (int) e.getLongGroupId()));
      }
    } catch (ImageBuilder.BuildException e) {
      throw e;
    } catch (IOException | IllegalArgumentException e) {
      throw new ImageBuilder.BuildException(
          where + ": could not unpack " + archive.getFileName() + ": " + e);
    }
    // Directories' times last: unpacking into them changed them. (Directories stay directories:
    // none is replaced, so these paths go through no link.)
    for (DirTime d : dirTimes.reversed()) {
      Files.getFileAttributeView(d.dir(), BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
          .setTimes(d.time(), null, null);
    }
    return owners;
  }

  /** Where an entry named {@code name} goes under {@code into}; never outside it. */
  private static Path inside(Path into, String name, Path archive, String where)
      throws ImageBuilder.BuildException {
    String rel = name;
    while (rel.startsWith("/")) {
      rel = rel.substring(1);
    }
    Path out = into.resolve(rel).normalize();
    if (!out.startsWith(into)) {
      throw new ImageBuilder.BuildException(
          where
              + ": "
              + archive.getFileName()
              + ": entry "
              + name
              + " climbs out of the destination");
    }
    return out;
  }

  /**
   * Refuses a write into {@code dir} when a directory from {@code root} down to it is a link: a
   * write there would land wherever the link points, on the building host.
   *
   * @param what what would be written, for the message
   */
  static void noLinkBelow(Path root, Path dir, String what, String where)
      throws ImageBuilder.BuildException {
    for (Path p = dir; p != null && p.startsWith(root) && !p.equals(root); p = p.getParent()) {
      if (Files.isSymbolicLink(p)) {
        throw new ImageBuilder.BuildException(
            where
                + ": "
                + what
                + " goes through the link "
                + root.relativize(p)
                + " made before it");
      }
    }
  }
}
