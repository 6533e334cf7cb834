package dev.skiff.tools;

import dev.skiff.casfs.ImageStore;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "fsck",
    mixinStandardHelpOptions = true,
    description = {
      "Check the store: every tag readable, every index whole, every pack present.",
      "With --verify-chunks every chunk of every pack is read back and checked against its digest.",
      "Chunks whose pack is gone or whose bytes are corrupt are forgotten, so that the next import of their",
      "content stores them again. Damaged images are listed, not removed. Exit code 1 when anything is damaged."
    })
final class FsckCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Option(
      names = "--verify-chunks",
      description = "also read every chunk back and check its digest (reads the whole store)")
  boolean verifyChunks;

  @Override
  public Integer call() throws Exception {
    try (ImageStore s = ImageStore.open(store.home())) {
      ImageStore.FsckResult r = s.fsck(verifyChunks);
      print("missing pack", r.missingPacks());
      print("damaged", r.corruptChunks());
      print("damaged image", r.damagedImages());
      System.out.printf(
          Locale.ROOT,
          "checked %s packs%s: %s missing, %s damaged packs or chunks, %s damaged images%s%n",
          Human.count(r.packs()),
          verifyChunks ? " and " + Human.count(r.chunksVerified()) + " chunks" : "",
          Human.count(r.missingPacks().size()),
          Human.count(r.corruptChunks().size()),
          Human.count(r.damagedImages().size()),
          r.chunksForgotten() == 0
              ? ""
              : "; forgot "
                  + Human.count(r.chunksForgotten())
                  + " chunks, so imports store them again");
      if (!r.damagedImages().isEmpty()) {
        System.out.println(
            "damaged images read wrong or not at all: import or pull them again, or skiff rmi them");
      }
      return r.clean() ? 0 : 1;
    }
  }

  private static void print(String what, List<String> items) {
    for (String i : items) {
      System.out.println(what + ": " + i);
    }
  }
}
