package dev.skiff.api;

import java.nio.file.Path;
import java.util.Optional;

/**
 * What an image is, parsed once where a person or a program names it and passed inward as this
 * type. The forms:
 *
 * <ul>
 *   <li>{@link Stored} {@code NAME[:TAG]}: a tag in the local store;
 *   <li>{@link InBucket} {@code s3://BUCKET[/PREFIX]/NAME[:TAG]}: a tag in a bucket, pulled (index
 *       only) into the local store under {@code NAME[:TAG]} and read lazily from the bucket;
 *   <li>{@link HostDirectory} {@code /abs/path}: a directory on the host used as a root as it is
 *       (to compare with, or to try a root filesystem before importing it).
 * </ul>
 *
 * {@link #toString()} gives back the text {@link #parse} reads.
 */
public sealed interface ImageSpec
    permits ImageSpec.Stored, ImageSpec.InBucket, ImageSpec.HostDirectory {

  /**
   * Parses any form; throws {@link IllegalArgumentException} with what is wrong and what is
   * accepted.
   */
  static ImageSpec parse(String text) {
    if (text == null || text.isBlank()) {
      throw new IllegalArgumentException(
          "no image given: want NAME[:TAG], s3://BUCKET[/PREFIX]/NAME[:TAG] or /abs/dir");
    }
    if (text.startsWith("/")) {
      return new HostDirectory(Path.of(text));
    }
    if (text.startsWith("s3://")) {
      int slash = text.lastIndexOf('/');
      if (slash <= "s3://".length() || slash == text.length() - 1) {
        throw new IllegalArgumentException(
            "want s3://BUCKET[/PREFIX]/NAME[:TAG], got '" + text + "'");
      }
      return new InBucket(text.substring(0, slash), ImageRef.parse(text.substring(slash + 1)));
    }
    if (text.contains("://")) {
      throw new IllegalArgumentException(
          "unknown image location '"
              + text
              + "': want NAME[:TAG], s3://BUCKET[/PREFIX]/NAME[:TAG] or /abs/dir");
    }
    return new Stored(ImageRef.parse(text));
  }

  /**
   * The tag this image has (or gets, once pulled) in the local store; empty for a host directory.
   */
  Optional<ImageRef> localRef();

  /** A tag in the local store. */
  record Stored(ImageRef ref) implements ImageSpec {
    @Override
    public Optional<ImageRef> localRef() {
      return Optional.of(ref);
    }

    @Override
    public String toString() {
      return ref.toString();
    }
  }

  /** A tag in a bucket: {@code bucketUrl} is {@code s3://BUCKET[/PREFIX]}. */
  record InBucket(String bucketUrl, ImageRef ref) implements ImageSpec {
    public InBucket {
      if (!bucketUrl.startsWith("s3://")
          || bucketUrl.length() <= "s3://".length()
          || bucketUrl.endsWith("/")) {
        throw new IllegalArgumentException("want s3://BUCKET[/PREFIX], got '" + bucketUrl + "'");
      }
    }

    @Override
    public Optional<ImageRef> localRef() {
      return Optional.of(ref);
    }

    @Override
    public String toString() {
      return bucketUrl + "/" + ref;
    }
  }

  /** A host directory used as a root as it is. */
  record HostDirectory(Path dir) implements ImageSpec {
    public HostDirectory {
      if (!dir.isAbsolute()) {
        throw new IllegalArgumentException(
            "a host directory image must be an absolute path, got '" + dir + "'");
      }
      dir = dir.normalize();
    }

    @Override
    public Optional<ImageRef> localRef() {
      return Optional.empty();
    }

    @Override
    public String toString() {
      return dir.toString();
    }
  }
}
