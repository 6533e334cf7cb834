package dev.skiff.tools;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.S3Location;
import java.io.IOException;

/** Images as commands name them: any {@link ImageSpec} form, parsed at the edge. */
final class Images {
  private Images() {}

  /**
   * The local tag of an image a command reads from the store: a stored image's own; for one in a
   * bucket, its index is pulled first (as {@code skiff pull} does), so that every command takes
   * every form.
   */
  static ImageRef local(ImageStore store, ImageSpec spec, RemoteOptions remote) throws IOException {
    return switch (spec) {
      case ImageSpec.Stored s -> s.ref();
      case ImageSpec.InBucket b -> {
        S3Location where = remote.location(b.bucketUrl());
        try (BlobStore bucket = remote.open(where, store.scratch())) {
          store.pull(bucket, where, b.ref());
        }
        yield b.ref();
      }
      case ImageSpec.HostDirectory d ->
          throw new IllegalArgumentException(
              d + " is a host directory, not an image of the store: import it first");
    };
  }
}
