package dev.skiff.casfs.image;

import static java.nio.charset.StandardCharsets.ISO_8859_1;
import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reads a tar stream (ustar, GNU and PAX) byte-exactly.
 *
 * <p>Written here rather than taken from Commons Compress because names must round-trip as raw
 * bytes: Commons Compress decodes PAX {@code path} records as UTF-8, which replaces bytes that are
 * not valid UTF-8, while Go's archive/tar (used by umoci, skopeo, Docker) writes them raw.
 * Decompression is done by the caller.
 *
 * <p>Understood: ustar prefix, base-256 numbers, GNU long names ({@code L}/{@code K}), PAX local
 * and global records (path, linkpath, size, uid, gid, mtime, {@code SCHILY.xattr.*}, {@code
 * SCHILY.devmajor/devminor}). Sparse files and unknown entry types are refused with a message. Not
 * thread safe.
 */
final class TarReader {
  private static final int BLOCK = 512;

  /**
   * The largest entry a header may claim (1 TiB). A claim is only a number until the bytes arrive,
   * so nothing is sized from it; this bound turns an absurd one into a clear refusal.
   */
  static final long MAX_ENTRY_SIZE = 1L << 40;

  private final InputStream in;
  private final String source;
  private final byte[] header = new byte[BLOCK];
  private final Map<String, byte[]> globalPax = new HashMap<>();
  private long position;
  private long remaining;
  private long padding;
  private TarEntry current;

  TarReader(InputStream in, String source) {
    this.in = in;
    this.source = source;
  }

  /** The next entry, or null at the end of the archive. Skips what is left of the current one. */
  TarEntry next() throws IOException {
    skipRest();
    if (ended) {
      return null;
    }
    Map<String, byte[]> pax = new LinkedHashMap<>(globalPax);
    String longName = null;
    String longLink = null;
    while (true) {
      long headerAt = position;
      if (!readBlock(header, true)) {
        return null;
      }
      if (isZero(header)) {
        return null; // end-of-archive marker; a second zero block may follow
      }
      verifyChecksum(headerAt);
      char type = (char) (header[156] & 0xff);
      long size = number(124, 12, "size");
      switch (type) {
        case 'x', 'g' -> {
          Map<String, byte[]> records = parsePax(readData(size, "PAX header"), headerAt);
          if (type == 'g') {
            globalPax.putAll(records);
            pax.putAll(records);
          } else {
            // An extended header applies to the next header: one followed by another applied to
            // that one (a writer's header for its own extended header), and is dropped, as GNU
            // tar and Go read it.
            pax = new LinkedHashMap<>(globalPax);
            pax.putAll(records);
          }
        }
        case 'L' -> longName = cString(readData(size, "GNU long name"));
        case 'K' -> longLink = cString(readData(size, "GNU long link"));
        default -> {
          return entry(type, size, pax, longName, longLink, headerAt);
        }
      }
    }
  }

  /** The content of the current entry; reads past its end return -1. */
  InputStream content() {
    return new InputStream() {
      @Override
      public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        if (remaining <= 0) {
          return -1;
        }
        int n = in.read(b, off, (int) Math.min(len, remaining));
        if (n < 0) {
          throw truncated("inside " + describeCurrent());
        }
        remaining -= n;
        position += n;
        return n;
      }
    };
  }

  private TarEntry entry(
      char type,
      long size,
      Map<String, byte[]> pax,
      String longName,
      String longLink,
      long headerAt)
      throws IOException {
    if (type == 'S' || pax.containsKey("GNU.sparse.map") || pax.containsKey("GNU.sparse.major")) {
      throw new ImportException(source, field(0, 100), "sparse tar entries are not supported");
    }
    String name = field(0, 100);
    boolean ustar =
        header[257] == 'u'
            && header[258] == 's'
            && header[259] == 't'
            && header[260] == 'a'
            && header[261] == 'r'
            && header[262] == 0;
    if (ustar && header[345] != 0) {
      name = field(345, 155) + "/" + name;
    }
    if (longName != null) {
      name = longName;
    }
    String link = longLink != null ? longLink : field(157, 100);
    long uid = number(108, 8, "uid");
    long gid = number(116, 8, "gid");
    long mtime = number(136, 12, "mtime");
    int nanos = 0;
    long major = 0;
    long minor = 0;
    if (type == '3' || type == '4') {
      major = number(329, 8, "devmajor");
      minor = number(337, 8, "devminor");
    }
    Map<String, byte[]> xattrs = new LinkedHashMap<>();
    for (Map.Entry<String, byte[]> r : pax.entrySet()) {
      String k = r.getKey();
      byte[] v = r.getValue();
      switch (k) {
        case "path" -> name = new String(v, ISO_8859_1);
        case "linkpath" -> link = new String(v, ISO_8859_1);
        case "size" -> size = paxLong(k, v, headerAt);
        case "uid" -> uid = paxLong(k, v, headerAt);
        case "gid" -> gid = paxLong(k, v, headerAt);
        case "SCHILY.devmajor" -> major = paxLong(k, v, headerAt);
        case "SCHILY.devminor" -> minor = paxLong(k, v, headerAt);
        case "mtime" -> {
          String s = new String(v, UTF_8);
          int dot = s.indexOf('.');
          try {
            mtime = Long.parseLong(dot < 0 ? s : s.substring(0, dot));
            if (dot >= 0) {
              String frac = (s.substring(dot + 1) + "000000000").substring(0, 9);
              nanos = Integer.parseInt(frac);
              if (s.startsWith("-") && nanos != 0) {
                mtime -= 1;
                nanos = 1_000_000_000 - nanos;
              }
            }
          } catch (NumberFormatException e) {
            throw new ImportException(source, name, "bad PAX mtime '" + s + "'");
          }
        }
        default -> {
          if (k.startsWith("SCHILY.xattr.")) {
            xattrs.put(
                new String(k.substring("SCHILY.xattr.".length()).getBytes(ISO_8859_1), ISO_8859_1),
                v);
          } else if (k.startsWith("LIBARCHIVE.xattr.")) {
            // libarchive's form (bsdtar, Skiff's push): the name URL-encoded, the value base64
            try {
              xattrs.put(
                  new String(
                      java.net.URLDecoder.decode(k.substring("LIBARCHIVE.xattr.".length()), UTF_8)
                          .getBytes(UTF_8),
                      ISO_8859_1),
                  java.util.Base64.getDecoder().decode(new String(v, ISO_8859_1).strip()));
            } catch (IllegalArgumentException e) {
              throw new ImportException(source, name, "bad base64 in PAX record " + k);
            }
          }
        }
      }
    }
    if (type == '\0' || type == '7') {
      type = '0';
    }
    switch (type) {
      case '0', '1', '2', '3', '4', '5', '6' -> {}
      default ->
          throw new ImportException(
              source, name, "unsupported tar entry type '" + printable(type) + "'");
    }
    if (size < 0) {
      throw new ImportException(source, name, "negative size");
    }
    if (size > MAX_ENTRY_SIZE) {
      throw new ImportException(
          source,
          name,
          "header claims "
              + size
              + " bytes; files are accepted up to "
              + (MAX_ENTRY_SIZE >> 40)
              + " TiB");
    }
    remaining = size;
    padding = (BLOCK - (size % BLOCK)) % BLOCK;
    int mode = (int) (number(100, 8, "mode") & 07777);
    current =
        new TarEntry(
            name,
            type,
            mode,
            uid,
            gid,
            type == '0' ? size : 0,
            mtime,
            nanos,
            link,
            major,
            minor,
            xattrs);
    return current;
  }

  /**
   * Skips what is left of the current entry: its unread data, then the padding to the next block. A
   * stream that ends in that padding, with every byte of the entry's data read, has simply lost its
   * end (umoci 0.4 writes layers that way, and Docker's tools read them): that is the end of the
   * archive, with every entry whole. One that ends in the data is truncated.
   */
  private void skipRest() throws IOException {
    long data = remaining;
    long n = remaining + padding;
    remaining = 0;
    padding = 0;
    while (n > 0) {
      long s = in.skip(n);
      if (s <= 0) {
        if (in.read() < 0) {
          if (data <= 0) { // in the padding: the entry is whole
            ended = true;
            return;
          }
          throw truncated("after " + describeCurrent());
        }
        s = 1;
      }
      n -= s;
      data -= s;
      position += s;
    }
  }

  private byte[] readData(long size, String what) throws IOException {
    if (size > (16 << 20)) {
      throw new ImportException(
          source, "@" + position, what + " of " + size + " bytes is implausibly large");
    }
    byte[] data = new byte[(int) size];
    readFully(data, what);
    long pad = (BLOCK - (size % BLOCK)) % BLOCK;
    byte[] skip = new byte[(int) pad];
    readFully(skip, what);
    return data;
  }

  private void readFully(byte[] b, String what) throws IOException {
    int off = 0;
    while (off < b.length) {
      int n = in.read(b, off, b.length - off);
      if (n < 0) {
        throw truncated("in " + what);
      }
      off += n;
      position += n;
    }
  }

  private boolean readBlock(byte[] b, boolean eofOk) throws IOException {
    int off = 0;
    while (off < BLOCK) {
      int n = in.read(b, off, BLOCK - off);
      if (n < 0) {
        if (off == 0 && eofOk) {
          return false;
        }
        throw truncated("in a header");
      }
      off += n;
      position += n;
    }
    return true;
  }

  private boolean ended; // the stream ended in the last entry's padding

  private IOException truncated(String where) {
    return new ImportException(
        source, "@" + position, "archive is truncated (" + where + ")", new EOFException());
  }

  private String describeCurrent() {
    return current == null ? "the first entry" : "entry '" + current.name() + "'";
  }

  private void verifyChecksum(long headerAt) throws IOException {
    long stored = number(148, 8, "checksum");
    long unsigned = 0;
    long signed = 0;
    for (int i = 0; i < BLOCK; i++) {
      int b = (i >= 148 && i < 156) ? ' ' : header[i];
      unsigned += b & 0xff;
      signed += (i >= 148 && i < 156) ? ' ' : header[i];
    }
    if (stored != unsigned && stored != signed) {
      throw new ImportException(
          source, "@" + headerAt, "corrupt tar header (checksum mismatch); not a tar archive?");
    }
  }

  private long number(int off, int len, String what) throws IOException {
    if ((header[off] & 0x80) != 0) {
      // GNU base-256: big-endian two's complement in the remaining bits.
      long v = (header[off] & 0x40) != 0 ? -1 : 0;
      v = (v << 6) | (header[off] & 0x3f);
      for (int i = 1; i < len; i++) {
        v = (v << 8) | (header[off + i] & 0xff);
      }
      return v;
    }
    long v = 0;
    int i = off;
    int end = off + len;
    while (i < end && (header[i] == ' ' || header[i] == 0)) {
      i++;
    }
    for (; i < end; i++) {
      byte b = header[i];
      if (b == 0 || b == ' ') {
        break;
      }
      if (b < '0' || b > '7') {
        throw new ImportException(
            source, "@" + position, "corrupt tar header: bad " + what + " field");
      }
      v = (v << 3) | (b - '0');
    }
    return v;
  }

  private long paxLong(String key, byte[] v, long headerAt) throws IOException {
    try {
      return Long.parseLong(new String(v, UTF_8).trim());
    } catch (NumberFormatException e) {
      throw new ImportException(source, "@" + headerAt, "bad PAX " + key + " record");
    }
  }

  private Map<String, byte[]> parsePax(byte[] data, long headerAt) throws IOException {
    Map<String, byte[]> out = new LinkedHashMap<>();
    int i = 0;
    while (i < data.length) {
      if (data[i] == 0) {
        break;
      }
      int sp = i;
      while (sp < data.length && data[sp] != ' ') {
        sp++;
      }
      int len;
      try {
        len = Integer.parseInt(new String(data, i, sp - i, ISO_8859_1));
      } catch (NumberFormatException e) {
        throw new ImportException(source, "@" + headerAt, "corrupt PAX header");
      }
      int end = i + len;
      if (len <= 0 || end > data.length || data[end - 1] != '\n') {
        throw new ImportException(source, "@" + headerAt, "corrupt PAX header");
      }
      int eq = sp + 1;
      while (eq < end && data[eq] != '=') {
        eq++;
      }
      if (eq >= end) {
        throw new ImportException(source, "@" + headerAt, "corrupt PAX record");
      }
      String key = new String(data, sp + 1, eq - sp - 1, ISO_8859_1);
      byte[] value = java.util.Arrays.copyOfRange(data, eq + 1, end - 1);
      out.put(key, value);
      i = end;
    }
    return out;
  }

  private String field(int off, int len) {
    int end = off;
    while (end < off + len && header[end] != 0) {
      end++;
    }
    return new String(header, off, end - off, ISO_8859_1);
  }

  private static String cString(byte[] b) {
    int end = 0;
    while (end < b.length && b[end] != 0) {
      end++;
    }
    return new String(b, 0, end, ISO_8859_1);
  }

  private static boolean isZero(byte[] b) {
    for (byte x : b) {
      if (x != 0) {
        return false;
      }
    }
    return true;
  }

  private static String printable(char c) {
    return c >= 32 && c < 127 ? String.valueOf(c) : String.format("\\x%02x", (int) c);
  }
}
