package dev.skiff.tools;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.S3Location;
import dev.skiff.tracer.TraceStore;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "push",
    mixinStandardHelpOptions = true,
    description = {
      "Upload an image to S3: the packs and chunk lists the bucket lacks, the index, then the tag.",
      "Safe to interrupt and run again; the remote tag is written last."
    })
final class PushCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Mixin RemoteOptions remote;

  @Parameters(index = "0", paramLabel = "NAME[:TAG]")
  String ref;

  @Parameters(index = "1", paramLabel = "s3://BUCKET[/PREFIX]")
  String url;

  @Option(
      names = {"-q", "--quiet"},
      description = "no line per blob")
  boolean quiet;

  @Override
  public Integer call() throws Exception {
    ImageRef r = ImageRef.parse(ref);
    S3Location where = remote.location(url);
    try (ImageStore s = ImageStore.open(store.home());
        BlobStore dest = remote.open(where, s.scratch())) {
      ImageStore.PushResult res =
          s.push(
              r,
              dest,
              (name, bytes, uploaded) -> {
                if (!quiet) {
                  System.out.printf(
                      Locale.ROOT,
                      "  %-8s %s (%s)%n",
                      uploaded ? "uploaded" : "present",
                      name,
                      Human.bytes(bytes));
                }
              });
      int traces = TraceStore.copyAll(s.blobs(), dest, res.index());
      System.out.printf(
          Locale.ROOT,
          "pushed %s to %s/%s: %d blobs uploaded (%s), %d already there, %d traces%n",
          r,
          where.url(),
          r,
          res.uploaded(),
          Human.bytes(res.bytes()),
          res.skipped(),
          traces);
    }
    return 0;
  }
}
