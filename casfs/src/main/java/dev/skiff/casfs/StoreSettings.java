package dev.skiff.casfs;

import dev.skiff.casfs.digest.DigestAlgorithm;
import dev.skiff.casfs.image.ImageImporter;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Properties;

/**
 * A store's settings, fixed when it is created ({@code HOME/store.properties}): digest algorithm,
 * chunk size, inline limit, pack size, zstd level. A store made by an older version keeps its own
 * (its inline limit of 4 KiB, say); a new store gets the defaults.
 */
final class StoreSettings {
  private StoreSettings() {}

  /** The settings of the store in {@code home}, written from {@code creation} if it has none. */
  static ImageImporter.Options readOrCreate(Path home, ImageImporter.Options creation)
      throws IOException {
    Path props = home.resolve("store.properties");
    ImageImporter.Options options;
    if (Files.exists(props)) {
      Properties p = new Properties();
      try (InputStream in = Files.newInputStream(props)) {
        p.load(in);
      }
      ImageImporter.Options d = ImageImporter.Options.defaults();
      options =
          new ImageImporter.Options(
              DigestAlgorithm.fromLabel(p.getProperty("digest", "xxh3-128")),
              Integer.parseInt(p.getProperty("chunk-size", "" + d.chunkSize())),
              Integer.parseInt(p.getProperty("inline-limit", "" + d.inlineLimit())),
              Long.parseLong(p.getProperty("pack-target", "" + d.packTarget())),
              Integer.parseInt(p.getProperty("zstd-level", "" + d.zstdLevel())),
              creation.maxExpansion());
    } else {
      options = creation;
      Properties p = new Properties();
      p.setProperty("digest", options.algorithm().label());
      p.setProperty("chunk-size", Integer.toString(options.chunkSize()));
      p.setProperty("inline-limit", Integer.toString(options.inlineLimit()));
      p.setProperty("pack-target", Long.toString(options.packTarget()));
      p.setProperty("zstd-level", Integer.toString(options.zstdLevel()));
      Path tmp = home.resolve("store.properties.tmp");
      try (OutputStream out = Files.newOutputStream(tmp)) {
        p.store(out, "Skiff store settings, fixed when the store was created");
      }
      Files.move(tmp, props, StandardCopyOption.ATOMIC_MOVE);
    }
    return options;
  }
}
