package dev.skiff.tools;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.tracer.TraceOptimizer;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "optimize",
    mixinStandardHelpOptions = true,
    description = {
      "Repack an image for its start, in the order its trace reads it.",
      "The chunks its trace names go into one new pack, in trace order, and the tag moves to a new index that",
      "points at them (old packs stay valid). Push it afterwards."
    })
final class OptimizeCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Parameters(index = "0", paramLabel = "NAME[:TAG]")
  String ref;

  @Option(
      names = "--trace-key",
      paramLabel = "KEY",
      description = "which start profile (default: the main one)")
  String traceKey;

  @Override
  public Integer call() throws Exception {
    ImageRef r = ImageRef.parse(ref);
    try (ImageStore s = ImageStore.open(store.home())) {
      TraceOptimizer.Result res = TraceOptimizer.optimize(s, r, traceKey);
      System.out.printf(
          Locale.ROOT,
          "repacked %s traced chunks (%s) into %s in trace order%n",
          Human.count(res.chunks()),
          Human.bytes(res.bytes()),
          res.pack());
      System.out.printf(
          Locale.ROOT,
          "%s now points at index %s (was %s)%n",
          r,
          res.after(),
          res.before().shortHex());
    }
    return 0;
  }
}
