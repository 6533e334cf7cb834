package dev.skiff.tools;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(
    name = "rmi",
    mixinStandardHelpOptions = true,
    description =
        "Remove image tags. Their blobs stay until skiff gc finds that no tag needs them.")
final class RmiCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Parameters(arity = "1..*", paramLabel = "NAME[:TAG]")
  List<String> refs;

  @Override
  public Integer call() throws Exception {
    int missing = 0;
    try (ImageStore s = ImageStore.open(store.home())) {
      for (String r : refs) {
        ImageRef ref = ImageRef.parse(r);
        if (s.untag(ref)) {
          System.out.println("untagged " + ref);
        } else {
          System.err.println("skiff rmi: no image " + ref + " (see skiff images)");
          missing++;
        }
      }
    }
    return missing == 0 ? 0 : 1;
  }
}
