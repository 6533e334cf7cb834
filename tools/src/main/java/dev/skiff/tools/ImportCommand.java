package dev.skiff.tools;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.image.ImageImporter;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.image.ImportResult;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "import",
    mixinStandardHelpOptions = true,
    description = {
      "Import an image and tag it.",
      "SOURCE is an OCI layout directory (PATH[:TAG]), a docker-save or OCI archive (PATH[:TAG]),"
          + " a rootfs tarball (gzip, zstd or none) or a directory."
    })
final class ImportCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Parameters(index = "0", paramLabel = "SOURCE")
  String source;

  @Parameters(index = "1", paramLabel = "NAME[:TAG]")
  String ref;

  @Option(
      names = "--digest",
      paramLabel = "ALG",
      description =
          "chunk digest for a new store: xxh3-128 (default) or sha256; an existing store keeps its own")
  String digest;

  @Option(
      names = "--max-expansion",
      paramLabel = "N",
      defaultValue = "200",
      description =
          "refuse layers that decompress to more than N times their size (default ${DEFAULT-VALUE})")
  long maxExpansion;

  @Option(
      names = {"-q", "--quiet"},
      description = "no progress line, even on a terminal")
  boolean quiet;

  @Override
  public Integer call() throws Exception {
    ImageRef target = ImageRef.parse(ref);
    ImageImporter.Options d = ImageImporter.Options.defaults();
    ImageImporter.Options creation =
        new ImageImporter.Options(
            digest == null ? d.algorithm() : DigestAlgorithm.fromLabel(digest),
            d.chunkSize(),
            d.inlineLimit(),
            d.packTarget(),
            d.zstdLevel(),
            maxExpansion);
    try (ImageStore s = ImageStore.open(store.home(), creation)) {
      ImportProgress progress =
          quiet || System.console() == null ? ImportProgress.NONE : new TerminalProgress();
      ImportResult r = s.importImage(source, target, progress);
      if (progress instanceof TerminalProgress tp) {
        tp.clear();
      }
      System.out.printf(Locale.ROOT, "imported %s as %s%n", r.source(), target);
      System.out.printf(
          Locale.ROOT, "  index    %s (%s)%n", r.index(), Human.bytes(r.indexBytes()));
      System.out.printf(
          Locale.ROOT,
          "  files    %s in %s inodes, %s%n",
          Human.count(r.files()),
          Human.count(r.inodes()),
          Human.bytes(r.logicalBytes()));
      System.out.printf(
          Locale.ROOT,
          "  chunks   %s referenced, %s unique, %s new%n",
          Human.count(r.chunkRefs()),
          Human.count(r.uniqueChunks()),
          Human.count(r.newChunks()));
      System.out.printf(
          Locale.ROOT,
          "  stored   %s new (dedup ratio %s)%n",
          Human.bytes(r.newBytes()),
          Human.ratio(r.dedupRatio()));
      System.out.printf(
          Locale.ROOT,
          "  took     %.2f s (%s/s)%n",
          r.seconds(),
          Human.bytes((long) (r.logicalBytes() / Math.max(r.seconds(), 1e-3))));
    }
    return 0;
  }

  /** A progress line on stderr, redrawn at most four times a second. */
  static final class TerminalProgress implements ImportProgress {
    private final long start = System.nanoTime();
    private long lastDraw;

    @Override
    public void update(long files, long bytes, int layer, int layers) {
      long now = System.nanoTime();
      if (now - lastDraw < 250_000_000L) {
        return;
      }
      lastDraw = now;
      double secs = (now - start) / 1e9;
      System.err.printf(
          Locale.ROOT,
          "\r  layer %d/%d  %s files  %s  %s/s   ",
          layer,
          layers,
          Human.count(files),
          Human.bytes(bytes),
          Human.bytes((long) (bytes / Math.max(secs, 1e-3))));
      System.err.flush();
    }

    void clear() {
      if (lastDraw != 0) {
        System.err.print("\r" + " ".repeat(72) + "\r");
        System.err.flush();
      }
    }
  }
}
