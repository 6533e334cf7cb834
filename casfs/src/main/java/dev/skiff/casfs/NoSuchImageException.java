package dev.skiff.casfs;

import dev.skiff.api.ImageRef;
import java.io.IOException;

/** There is no image of that name: no such tag in the local store, or in the bucket named. */
public final class NoSuchImageException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient ImageRef ref;
  private final String where;

  /**
   * @param where the bucket looked in ({@code s3://...}), or null for the local store
   */
  public NoSuchImageException(ImageRef ref, String where) {
    super("no image " + ref + (where == null ? "" : " in " + where));
    this.ref = ref;
    this.where = where;
  }

  public ImageRef ref() {
    return ref;
  }

  /** The bucket looked in, or null for the local store. */
  public String where() {
    return where;
  }
}
