package dev.skiff.casfs.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

/**
 * Builds tar layers in tests with Commons Compress, an implementation independent of casfs's own
 * reader, so that the two check each other.
 */
public final class Tars {
  private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
  private final TarArchiveOutputStream out;

  public Tars() {
    out = new TarArchiveOutputStream(bytes, StandardCharsets.UTF_8.name());
    out.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
    out.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
    out.setAddPaxHeadersForNonAsciiNames(true);
  }

  public Tars dir(String name, int mode) throws IOException {
    TarArchiveEntry e = new TarArchiveEntry(name.endsWith("/") ? name : name + "/");
    e.setMode(mode);
    e.setModTime(1_600_000_000_000L);
    out.putArchiveEntry(e);
    out.closeArchiveEntry();
    return this;
  }

  public Tars file(String name, String content) throws IOException {
    return file(name, content.getBytes(StandardCharsets.UTF_8), 0644);
  }

  public Tars file(String name, byte[] content, int mode) throws IOException {
    TarArchiveEntry e = new TarArchiveEntry(name);
    e.setSize(content.length);
    e.setMode(mode);
    e.setModTime(1_600_000_000_000L);
    out.putArchiveEntry(e);
    out.write(content);
    out.closeArchiveEntry();
    return this;
  }

  /** Any entry, as built by the caller (owners, devices, PAX records), with its content. */
  public Tars entry(TarArchiveEntry e, byte[] content) throws IOException {
    e.setSize(content.length);
    out.putArchiveEntry(e);
    out.write(content);
    out.closeArchiveEntry();
    return this;
  }

  public Tars symlink(String name, String target) throws IOException {
    TarArchiveEntry e = new TarArchiveEntry(name, TarConstants.LF_SYMLINK);
    e.setLinkName(target);
    out.putArchiveEntry(e);
    out.closeArchiveEntry();
    return this;
  }

  public Tars hardlink(String name, String target) throws IOException {
    TarArchiveEntry e = new TarArchiveEntry(name, TarConstants.LF_LINK);
    e.setLinkName(target);
    out.putArchiveEntry(e);
    out.closeArchiveEntry();
    return this;
  }

  public byte[] bytes() throws IOException {
    out.finish();
    out.close();
    return bytes.toByteArray();
  }

  /** Writes the tar, gzip-compressed, to {@code file}. */
  public Path writeGzip(Path file) throws IOException {
    byte[] tar = bytes();
    try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(file))) {
      o.write(tar);
    }
    return file;
  }

  public Path write(Path file) throws IOException {
    Files.write(file, bytes());
    return file;
  }
}
