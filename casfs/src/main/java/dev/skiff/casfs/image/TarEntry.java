package dev.skiff.casfs.image;

import java.util.Map;

/**
 * One header of a tar stream, after PAX and GNU long-name records were applied. Names and link
 * targets are raw bytes held one char per byte (ISO-8859-1), so names that are not valid UTF-8
 * survive unchanged.
 */
record TarEntry(
    String name,
    char type,
    int mode,
    long uid,
    long gid,
    long size,
    long mtimeSeconds,
    int mtimeNanos,
    String linkName,
    long devMajor,
    long devMinor,
    Map<String, byte[]> xattrs) {

  static final char REGULAR = '0';
  static final char HARDLINK = '1';
  static final char SYMLINK = '2';
  static final char CHAR_DEVICE = '3';
  static final char BLOCK_DEVICE = '4';
  static final char DIRECTORY = '5';
  static final char FIFO = '6';

  /** This entry without extended attribute {@code name}. */
  TarEntry withoutXattr(String name) {
    Map<String, byte[]> x = new java.util.LinkedHashMap<>(xattrs);
    x.remove(name);
    return new TarEntry(
        this.name,
        type,
        mode,
        uid,
        gid,
        size,
        mtimeSeconds,
        mtimeNanos,
        linkName,
        devMajor,
        devMinor,
        x);
  }
}
