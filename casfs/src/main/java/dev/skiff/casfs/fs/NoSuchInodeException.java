package dev.skiff.casfs.fs;

/** Raised for inode {@code ino}: no inode. */
public class NoSuchInodeException extends java.io.FileNotFoundException {
  private static final long serialVersionUID = 1L;

  public NoSuchInodeException(long ino) {
    super("inode " + ino + ": no inode");
  }
}
