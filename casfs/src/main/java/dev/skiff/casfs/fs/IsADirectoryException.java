package dev.skiff.casfs.fs;

/** Raised for inode {@code ino}: is a directory. */
public class IsADirectoryException extends java.io.IOException {
  private static final long serialVersionUID = 1L;

  public IsADirectoryException(long ino) {
    super("inode " + ino + ": is a directory");
  }
}
