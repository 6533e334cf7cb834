package dev.skiff.casfs.image;

import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import java.io.BufferedInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/** Decompression, digest checking and decompression-bomb limits for layer streams. */
final class LayerStreams {
  /** Expansion is only judged after this many decompressed bytes. */
  static final long EXPANSION_GRACE = 64L << 20;

  private LayerStreams() {}

  /** Wraps a raw (possibly compressed) layer stream: checks digest and size, decompresses. */
  static LayerInput open(
      InputStream raw, String source, String digest, String mediaType, long maxExpansion)
      throws IOException {
    CountingInputStream counted = new CountingInputStream(raw);
    InputStream checked =
        digest == null ? counted : new DigestCheckingInputStream(counted, digest, source);
    BufferedInputStream in = new BufferedInputStream(checked, 1 << 16);
    in.mark(4);
    byte[] magic = in.readNBytes(4);
    in.reset();
    InputStream plain;
    if (magic.length >= 2 && (magic[0] & 0xff) == 0x1f && (magic[1] & 0xff) == 0x8b) {
      plain = new GZIPInputStream(in, 1 << 16);
    } else if (magic.length == 4
        && (magic[0] & 0xff) == 0x28
        && (magic[1] & 0xff) == 0xb5
        && (magic[2] & 0xff) == 0x2f
        && (magic[3] & 0xff) == 0xfd) {
      plain = new ZstdInputStreamNoFinalizer(in);
    } else if (mediaType != null && (mediaType.endsWith("gzip") || mediaType.endsWith("zstd"))) {
      throw new ImportException(
          source, null, "layer declared " + mediaType + " but is not compressed that way");
    } else {
      return new LayerInput(in, in, counted, source, false, maxExpansion);
    }
    // Fetching, hashing and inflating run a megabyte ahead on a thread of their own, while the
    // importer's thread parses the tar and cuts and hashes chunks (a registry pull of 3 layers,
    // 90 MiB: see bench/RESULTS.md). Read errors come through as they were thrown.
    InputStream ahead =
        org.apache.commons.io.input.ReadAheadInputStream.builder()
            .setInputStream(plain)
            .setBufferSize(1 << 20)
            .get();
    return new LayerInput(ahead, in, counted, source, true, maxExpansion);
  }

  /**
   * A filter every byte of which passes through its (overridden) array read: single-byte reads and
   * skips included, so a stream that counts or hashes sees every byte ({@link
   * FilterInputStream#skip} would hand a skip to the stream below, past the hash). No mark/reset.
   */
  abstract static class ArrayReadFilter extends FilterInputStream {
    ArrayReadFilter(InputStream in) {
      super(in);
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public long skip(long n) throws IOException {
      byte[] sink = new byte[(int) Math.min(Math.max(n, 0), 1 << 16)];
      long left = n;
      while (left > 0) {
        int r = read(sink, 0, (int) Math.min(left, sink.length));
        if (r < 0) {
          break;
        }
        left -= r;
      }
      return n - Math.max(left, 0);
    }

    @Override
    public boolean markSupported() {
      return false;
    }

    @Override
    public void mark(int limit) {}

    @Override
    public void reset() throws IOException {
      throw new IOException("mark/reset not supported");
    }
  }

  static final class CountingInputStream extends ArrayReadFilter {
    long count;

    CountingInputStream(InputStream in) {
      super(in);
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      int n = super.read(b, off, len);
      if (n > 0) {
        count += n;
      }
      return n;
    }
  }

  /**
   * A layer's decompressed bytes. Refuses streams that expand past {@link #maxExpansion} and maps
   * codec errors to import errors; {@link #finish} reads what is left so the digest gets checked.
   */
  static final class LayerInput extends ArrayReadFilter {
    private final InputStream raw;
    private final CountingInputStream compressed;
    private final String source;
    private final boolean decompressing;
    private final long maxExpansion;
    private long produced;

    LayerInput(
        InputStream in,
        InputStream raw,
        CountingInputStream compressed,
        String source,
        boolean decompressing,
        long maxExpansion) {
      super(in);
      this.raw = raw;
      this.maxExpansion = maxExpansion;
      this.compressed = compressed;
      this.source = source;
      this.decompressing = decompressing;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      int n;
      try {
        n = super.read(b, off, len);
      } catch (ZipException | java.io.EOFException e) {
        throw new ImportException(
            source, null, "compressed layer is corrupt or truncated: " + e.getMessage(), e);
      } catch (IOException e) {
        if (e instanceof ImportException || !decompressing) {
          throw e;
        }
        throw new ImportException(
            source, null, "compressed layer is corrupt or truncated: " + e.getMessage(), e);
      }
      if (n > 0 && decompressing) {
        produced += n;
        if (produced > EXPANSION_GRACE && produced > maxExpansion * Math.max(1, compressed.count)) {
          throw new ExpansionLimitException(source, maxExpansion, produced, compressed.count);
        }
      }
      return n;
    }

    /** Reads the rest of the layer (tar padding, compression trailer), checking its digest. */
    void finish() throws IOException {
      transferTo(java.io.OutputStream.nullOutputStream());
      raw.transferTo(java.io.OutputStream.nullOutputStream());
    }
  }

  /** The OCI digest of {@code bytes} in the algorithm {@code like} names ({@code sha256:...}). */
  static String digestOf(byte[] bytes, String like, String source) throws ImportException {
    MessageDigest md = DigestCheckingInputStream.messageDigest(like, source);
    return like.substring(0, like.indexOf(':') + 1) + HexFormat.of().formatHex(md.digest(bytes));
  }

  /** Checks an OCI digest ({@code sha256:hex}) of everything read, at the end of the stream. */
  private static final class DigestCheckingInputStream extends ArrayReadFilter {
    private final MessageDigest md;
    private final String expected;
    private final String source;
    private boolean checked;
    private ImportException mismatch;

    DigestCheckingInputStream(InputStream in, String digest, String source) throws ImportException {
      super(in);
      this.expected = digest;
      this.source = source;
      this.md = messageDigest(digest, source);
    }

    static MessageDigest messageDigest(String digest, String source) throws ImportException {
      int colon = digest.indexOf(':');
      String alg = colon < 0 ? "" : digest.substring(0, colon);
      try {
        return MessageDigest.getInstance(
            switch (alg) {
              case "sha256" -> "SHA-256";
              case "sha512" -> "SHA-512";
              default ->
                  throw new ImportException(source, null, "unsupported digest '" + digest + "'");
            });
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      }
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      // Sticky: GZIPInputStream probes for a further member at the end and swallows what that
      // probe throws, so a mismatch must be thrown again by every later read.
      if (mismatch != null) {
        throw mismatch;
      }
      int n = super.read(b, off, len);
      if (n > 0) {
        md.update(b, off, n);
      } else if (n < 0 && !checked) {
        checked = true;
        String got =
            expected.substring(0, expected.indexOf(':') + 1)
                + HexFormat.of().formatHex(md.digest());
        if (!got.equals(expected)) {
          mismatch =
              new ImportException(
                  source,
                  null,
                  "layer digest mismatch: manifest says " + expected + ", content is " + got);
          throw mismatch;
        }
      }
      return n;
    }
  }
}
