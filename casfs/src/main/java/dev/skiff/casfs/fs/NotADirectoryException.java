package dev.skiff.casfs.fs;

/** Raised for inode {@code ino}: not a directory. */
public class NotADirectoryException extends java.io.IOException {
  private static final long serialVersionUID = 1L;

  public NotADirectoryException(long ino) {
    super("inode " + ino + ": not a directory");
  }
}
