package dev.skiff.tools;

import dev.skiff.casfs.ImageStore;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "gc",
    mixinStandardHelpOptions = true,
    description = {
      "Remove the store's blobs that no tag needs, and scratch files of killed processes.",
      "Packs no tagged image reads, indexes no tag names (left by skiff rmi, an interrupted import or an optimize)",
      "and their traces go; images a running mount has open are kept. Damage does not stop it: what an unreadable",
      "tag or a damaged index might need is kept, and said. The disk chunk cache has its own: skiff cache gc."
    })
final class GcCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Option(names = "--dry-run", description = "say what would be removed, remove nothing")
  boolean dryRun;

  @Option(
      names = "--keep-recent",
      defaultValue = "10m",
      paramLabel = "DURATION",
      description =
          "keep blobs written less than this long ago, whatever needs them (default ${DEFAULT-VALUE})")
  String keepRecent;

  @Override
  public Integer call() throws Exception {
    try (ImageStore s = ImageStore.open(store.home())) {
      ImageStore.GcResult r = s.gc(dryRun, RemoteOptions.duration(keepRecent));
      for (String problem : r.problems()) {
        System.err.println("skiff gc: " + problem);
      }
      StringBuilder derived = new StringBuilder();
      r.derived()
          .forEach(
              (kind, n) -> derived.append(", ").append(Human.count(n)).append(' ').append(kind));
      System.out.printf(
          "%s %s packs (%s) and %s indexes (%s)%s%s; kept what %d tags need%s%n",
          dryRun ? "would remove" : "removed",
          Human.count(r.packs()),
          Human.bytes(r.packBytes()),
          Human.count(r.indexes()),
          Human.bytes(r.indexBytes()),
          derived,
          r.scratchBytes() == 0
              ? ""
              : ", " + Human.bytes(r.scratchBytes()) + " of scratch left by killed processes",
          r.tags(),
          r.inUse() == 0 ? "" : ", and " + r.inUse() + " untagged images a running mount has open");
      if (!r.problems().isEmpty()) {
        System.err.println("skiff gc: the store is damaged; skiff fsck says more");
      }
    }
    return 0;
  }
}
