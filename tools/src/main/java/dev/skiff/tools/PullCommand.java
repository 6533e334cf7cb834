package dev.skiff.tools;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.S3Location;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(
    name = "pull",
    mixinStandardHelpOptions = true,
    description = {
      "Fetch an image's index from S3 and tag it locally.",
      "Its chunks stay in the bucket: a mount fetches them lazily, through the disk cache."
    })
final class PullCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Mixin RemoteOptions remote;

  @Parameters(index = "0", paramLabel = "s3://BUCKET[/PREFIX]/NAME[:TAG]")
  String url;

  @Override
  public Integer call() throws Exception {
    if (!(ImageSpec.parse(url) instanceof ImageSpec.InBucket spec)) {
      throw new IllegalArgumentException("want s3://BUCKET[/PREFIX]/NAME[:TAG], got '" + url + "'");
    }
    S3Location where = remote.location(spec.bucketUrl());
    ImageRef r = spec.ref();
    try (ImageStore s = ImageStore.open(store.home());
        BlobStore src = remote.open(where, s.scratch())) {
      Digest d = s.pull(src, where, r);
      System.out.println(
          "pulled " + r + " (index " + d + ") from " + where.url() + "; chunks stay remote");
    }
    return 0;
  }
}
