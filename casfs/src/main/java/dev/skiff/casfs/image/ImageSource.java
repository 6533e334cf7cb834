package dev.skiff.casfs.image;

import java.io.Closeable;
import java.io.IOException;
import java.util.List;

/**
 * Something an image can be imported from: its config (null for a bare rootfs) and its layers,
 * lowest first, each opened as a decompressed tar stream.
 */
interface ImageSource extends Closeable {
  String describe();

  /** The OCI image config JSON, or null when the source has none. */
  byte[] config() throws IOException;

  List<Layer> layers() throws IOException;

  /**
   * One layer. {@code open} decompresses, checks the layer's digest (when known) as it is read, and
   * refuses a layer that expands more than {@code maxExpansion} times (a decompression bomb).
   */
  interface Layer {
    String describe();

    String digest();

    String mediaType();

    long compressedSize();

    LayerStreams.LayerInput open(long maxExpansion) throws IOException;

    /**
     * Whether this layer is a kernel overlayfs upper directory (whiteouts as 0:0 character devices,
     * opaque directories marked with an attribute), as an image build's step leaves it.
     */
    default boolean overlayDiff() {
      return false;
    }

    /**
     * A layer whose compressed bytes {@code raw} opens: decompressed by its media type (or by what
     * its bytes say) and checked against {@code digest} as it is read.
     */
    static Layer streamed(
        String describe, String digest, String mediaType, long compressedSize, RawOpener raw) {
      return of(
          describe,
          digest,
          mediaType,
          compressedSize,
          max -> LayerStreams.open(raw.open(), describe, digest, mediaType, max));
    }

    /** {@code d} read as a kernel overlayfs upper directory ({@link #overlayDiff()}). */
    static Layer overlay(Layer d) {
      return new Layer() {
        @Override
        public String describe() {
          return d.describe();
        }

        @Override
        public String digest() {
          return d.digest();
        }

        @Override
        public String mediaType() {
          return d.mediaType();
        }

        @Override
        public long compressedSize() {
          return d.compressedSize();
        }

        @Override
        public LayerStreams.LayerInput open(long maxExpansion) throws IOException {
          return d.open(maxExpansion);
        }

        @Override
        public boolean overlayDiff() {
          return true;
        }
      };
    }

    /** A layer described by these values and opened by {@code opener}. */
    static Layer of(
        String describe, String digest, String mediaType, long compressedSize, Opener opener) {
      return new Layer() {
        @Override
        public String describe() {
          return describe;
        }

        @Override
        public String digest() {
          return digest;
        }

        @Override
        public String mediaType() {
          return mediaType;
        }

        @Override
        public long compressedSize() {
          return compressedSize;
        }

        @Override
        public LayerStreams.LayerInput open(long maxExpansion) throws IOException {
          return opener.open(maxExpansion);
        }
      };
    }
  }

  /** Opens a layer's bytes as stored (compressed). */
  @FunctionalInterface
  interface RawOpener {
    java.io.InputStream open() throws IOException;
  }

  /** Opens a layer's decompressed stream. */
  @FunctionalInterface
  interface Opener {
    LayerStreams.LayerInput open(long maxExpansion) throws IOException;
  }

  /** A source of these parts, with nothing to close. */
  static ImageSource of(String describe, byte[] config, List<Layer> layers) {
    return new ImageSource() {
      @Override
      public String describe() {
        return describe;
      }

      @Override
      public byte[] config() {
        return config;
      }

      @Override
      public List<Layer> layers() {
        return layers;
      }
    };
  }

  @Override
  default void close() throws IOException {}
}
