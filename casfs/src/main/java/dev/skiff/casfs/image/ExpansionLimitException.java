package dev.skiff.casfs.image;

/**
 * A compressed layer expands beyond the import's limit (a likely decompression bomb); the limit can
 * be raised for an image known to be fine.
 */
public final class ExpansionLimitException extends ImportException {
  private static final long serialVersionUID = 1L;

  private final long limit;

  ExpansionLimitException(String source, long limit, long produced, long compressed) {
    super(
        source,
        null,
        "layer expands more than "
            + limit
            + "x ("
            + produced
            + " bytes from "
            + compressed
            + "); refusing a likely decompression bomb");
    this.limit = limit;
  }

  /** The expansion factor that was exceeded. */
  public long limit() {
    return limit;
  }
}
