package dev.skiff.tools;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.registry.RegistryClient;
import dev.skiff.casfs.registry.RegistryPush;
import dev.skiff.casfs.registry.RegistryRef;
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
      "Safe to interrupt and run again; the remote tag is written last.",
      "Or push it to an OCI registry (docker://[HOST[:PORT]/]REPOSITORY:TAG) as an OCI image of one"
          + " layer; the layer is not uploaded when the repository has it. Credentials and plain"
          + " HTTP as for skiff pull."
    })
final class PushCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Mixin RemoteOptions remote;

  @Parameters(index = "0", paramLabel = "NAME[:TAG]")
  String ref;

  @Parameters(
      index = "1",
      paramLabel = "DEST",
      description = "s3://BUCKET[/PREFIX] or docker://[HOST[:PORT]/]REPOSITORY:TAG")
  String url;

  @Option(names = "--creds", paramLabel = "USER:PASSWORD", description = "registry credentials")
  String creds;

  @Option(names = "--insecure", description = "speak plain HTTP to the registry")
  boolean insecure;

  @Option(
      names = {"-q", "--quiet"},
      description = "no line per blob")
  boolean quiet;

  @Override
  public Integer call() throws Exception {
    ImageRef r = ImageRef.parse(ref);
    if (RegistryRef.is(url)) {
      RegistryRef dest = RegistryRef.parse(url);
      RegistryClient.Options o = RegistryClient.Options.defaults();
      if (creds != null) {
        o = o.withCredentials(creds);
      }
      if (insecure) {
        o = o.withInsecure(dest.registry());
      }
      try (ImageStore s = ImageStore.open(store.home())) {
        RegistryPush.Result res = s.pushToRegistry(r, dest, o);
        System.out.printf(
            Locale.ROOT,
            "pushed %s to %s@%s (one layer, %s, %s)%n",
            r,
            dest,
            res.manifestDigest(),
            Human.bytes(res.layerBytes()),
            res.layerUploaded() ? "uploaded" : "already there");
      }
      return 0;
    }
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
