package dev.skiff.tools;

import dev.skiff.casfs.ImageInfo;
import dev.skiff.casfs.ImageStore;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(
    name = "images",
    mixinStandardHelpOptions = true,
    description = {
      "List tagged images.",
      "SIZE is the logical size of the files; STORED what the image's unique chunks take in the store;"
          + " NEW what its import added; DEDUP is SIZE / NEW."
    })
final class ImagesCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Override
  public Integer call() throws Exception {
    try (ImageStore s = ImageStore.open(store.home())) {
      List<ImageInfo> images = s.images();
      String fmt = "%-32s %-14s %9s %10s %10s %10s %10s%n";
      System.out.printf(
          Locale.ROOT, fmt, "NAME", "INDEX", "FILES", "SIZE", "STORED", "NEW", "DEDUP");
      int damaged = 0;
      for (ImageInfo i : images) {
        String index = i.index() == null ? "-" : i.index().shortHex();
        if (i.isDamaged() && i.files() == 0) {
          System.out.printf(Locale.ROOT, "%-32s %-14s DAMAGED: %s%n", i.ref(), index, i.damage());
        } else {
          System.out.printf(
              Locale.ROOT,
              fmt,
              i.ref(),
              index,
              Human.count(i.files()),
              Human.bytes(i.logicalBytes()),
              Human.bytes(i.storedBytes()),
              Human.bytes(i.newBytes()),
              Human.ratio(i.dedupRatio()));
          if (i.isDamaged()) {
            System.out.printf(Locale.ROOT, "%-32s %-14s DAMAGED: %s%n", "", "", i.damage());
          }
        }
        damaged += i.isDamaged() ? 1 : 0;
      }
      if (damaged > 0) {
        System.err.printf(
            Locale.ROOT,
            "skiff images: %d damaged image%s: skiff fsck checks the store; import or pull"
                + " them again, or skiff rmi them%n",
            damaged,
            damaged == 1 ? "" : "s");
      }
    }
    return 0;
  }
}
