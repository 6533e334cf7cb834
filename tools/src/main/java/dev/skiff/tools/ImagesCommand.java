package dev.skiff.tools;

import dev.skiff.casfs.ImageInfo;
import dev.skiff.casfs.ImageStore;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(name = "images", mixinStandardHelpOptions = true,
    description = {"List tagged images.",
        "SIZE is the logical size of the files; STORED what the image's unique chunks take in the store;"
            + " NEW what its import added; DEDUP is SIZE / NEW."})
final class ImagesCommand implements Callable<Integer> {
  @Mixin
  SkiffCli.StoreOptions store;

  @Override
  public Integer call() throws Exception {
    try (ImageStore s = ImageStore.open(store.home())) {
      List<ImageInfo> images = s.images();
      String fmt = "%-32s %-14s %9s %10s %10s %10s %10s%n";
      System.out.printf(Locale.ROOT, fmt, "NAME", "INDEX", "FILES", "SIZE", "STORED", "NEW", "DEDUP");
      for (ImageInfo i : images) {
        System.out.printf(Locale.ROOT, fmt, i.ref(), i.index().shortHex(), Human.count(i.files()),
            Human.bytes(i.logicalBytes()), Human.bytes(i.storedBytes()), Human.bytes(i.newBytes()),
            Human.ratio(i.dedupRatio()));
      }
    }
    return 0;
  }
}
