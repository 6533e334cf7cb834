package dev.skiff.tools;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.image.ImportResult;
import dev.skiff.casfs.registry.RegistryClient;
import dev.skiff.casfs.registry.RegistryRef;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.S3Location;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "pull",
    mixinStandardHelpOptions = true,
    description = {
      "Fetch an image's index from S3 and tag it locally: its chunks stay in the bucket, and a mount"
          + " fetches them lazily, through the disk cache.",
      "Or fetch an image from an OCI registry (docker://[HOST[:PORT]/]REPOSITORY[:TAG][@DIGEST]) into"
          + " the store as NAME[:TAG]: layers stream in, checked against their digests; chunks the"
          + " store has already are not stored again. Credentials: --creds, else docker login's"
          + " ~/.docker/config.json. Plain HTTP for registries on loopback and those named with"
          + " --insecure or $SKIFF_INSECURE_REGISTRIES."
    })
final class PullCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Mixin RemoteOptions remote;

  @Parameters(
      index = "0",
      paramLabel = "SOURCE",
      description =
          "s3://BUCKET[/PREFIX]/NAME[:TAG] or docker://[HOST[:PORT]/]REPOSITORY[:TAG][@DIGEST]")
  String url;

  @Parameters(
      index = "1",
      arity = "0..1",
      paramLabel = "NAME[:TAG]",
      description = "what to call an image from a registry here (default: its repository and tag)")
  String as;

  @Option(
      names = "--platform",
      paramLabel = "OS/ARCH[/VARIANT]",
      description = "the image of an index to take (default linux/amd64)")
  String platform;

  @Option(names = "--creds", paramLabel = "USER:PASSWORD", description = "registry credentials")
  String creds;

  @Option(
      names = "--insecure",
      description = "speak plain HTTP to the registry (loopback registries always are)")
  boolean insecure;

  @Option(
      names = {"-q", "--quiet"},
      description = "no progress line, even on a terminal")
  boolean quiet;

  @Override
  public Integer call() throws Exception {
    if (RegistryRef.is(url)) {
      return fromRegistry();
    }
    if (!(ImageSpec.parse(url) instanceof ImageSpec.InBucket spec)) {
      throw new IllegalArgumentException(
          "want s3://BUCKET[/PREFIX]/NAME[:TAG] or docker://[HOST[:PORT]/]REPOSITORY[:TAG], got '"
              + url
              + "'");
    }
    if (as != null) {
      throw new IllegalArgumentException(
          "an image pulled from a bucket keeps its name there (" + spec.ref() + ")");
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

  private int fromRegistry() throws Exception {
    RegistryRef ref = RegistryRef.parse(url);
    RegistryClient.Options o = RegistryClient.Options.defaults();
    if (platform != null) {
      o = o.withPlatform(platform);
    }
    if (creds != null) {
      o = o.withCredentials(creds);
    }
    if (insecure) {
      o = o.withInsecure(ref.registry());
    }
    ImageRef target =
        ImageRef.parse(
            as != null
                ? as
                : ref.repository().substring(ref.repository().lastIndexOf('/') + 1)
                    + ":"
                    + (ref.tag() != null ? ref.tag() : "latest"));
    try (ImageStore s = ImageStore.open(store.home())) {
      ImportProgress progress =
          quiet || System.console() == null
              ? ImportProgress.NONE
              : new ImportCommand.TerminalProgress();
      ImportResult r = s.pullFromRegistry(ref, o, target, progress);
      if (progress instanceof ImportCommand.TerminalProgress tp) {
        tp.clear();
      }
      System.out.printf(
          Locale.ROOT,
          "pulled %s as %s: %s files, %s; %s new (%.2f s)%n",
          r.source(),
          target,
          Human.count(r.files()),
          Human.bytes(r.logicalBytes()),
          Human.bytes(r.newBytes()),
          r.seconds());
    }
    return 0;
  }
}
