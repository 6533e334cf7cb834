package dev.skiff.casfs.store;

import java.io.FileNotFoundException;

/** A blob that should be in a store is not there. */
public class BlobNotFoundException extends FileNotFoundException {
  private static final long serialVersionUID = 1L;

  public BlobNotFoundException(String store, String name) {
    super("blob " + name + " not found in " + store);
  }
}
