package dev.skiff.tools;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.registry.RegistryClient;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.S3Location;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.build.ImageBuilder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "build",
    mixinStandardHelpOptions = true,
    description = {
      "Build an image from a Dockerfile into the store: FROM (an image here, or docker://...), RUN"
          + " in a gVisor sandbox on the image so far (network on), COPY from CONTEXT, ADD (local"
          + " tar archives unpacked, http(s) URLs fetched), ENV, WORKDIR, USER, CMD, ENTRYPOINT, LABEL, ARG, EXPOSE, VOLUME, STOPSIGNAL.",
      "Every RUN and COPY is cached in the store by the image it starts from, its text, its"
          + " environment and the content it copies: a rebuild runs only what changed, and from"
          + " there on. The steps' output streams as they run.",
      "With --cache s3://BUCKET/PREFIX, hosts with stores of their own share the steps: a step"
          + " found in the bucket is fetched instead of run, and every step built here is pushed"
          + " there."
    })
final class BuildCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Mixin RuntimeCliOptions runtime;

  @Mixin RemoteOptions remote;

  @Option(
      names = "--cache",
      paramLabel = "s3://BUCKET[/PREFIX]",
      description =
          "a bucket build steps are shared through, looked in after this store (steps built here"
              + " are pushed there)")
  String cache;

  @Option(
      names = {"-f", "--file"},
      paramLabel = "DOCKERFILE",
      description = "the Dockerfile (default: CONTEXT/Dockerfile)")
  Path file;

  @Option(
      names = {"-t", "--tag"},
      required = true,
      paramLabel = "NAME[:TAG]",
      description = "what to call the image")
  String tag;

  @Option(names = "--build-arg", paramLabel = "NAME=VALUE", description = "set an ARG (repeatable)")
  List<String> buildArgs = new java.util.ArrayList<>();

  @Option(names = "--force-build", description = "run every step, cached or not")
  boolean force;

  @Parameters(index = "0", paramLabel = "CONTEXT", description = "the directory COPY reads from")
  Path context;

  @Override
  public Integer call() throws Exception {
    Path dockerfile = file != null ? file : context.resolve("Dockerfile");
    if (!Files.isRegularFile(dockerfile)) {
      throw new IllegalArgumentException("no Dockerfile at " + dockerfile + " (give one with -f)");
    }
    Map<String, String> args = new LinkedHashMap<>();
    for (String a : buildArgs) {
      int eq = a.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("--build-arg wants NAME=VALUE, got '" + a + "'");
      }
      args.put(a.substring(0, eq), a.substring(eq + 1));
    }
    S3Location where = cache == null ? null : remote.location(cache);
    try (ImageStore s = ImageStore.open(store.home());
        SandboxRuntime rt = SandboxRuntime.open(s, runtime.config(null, false));
        BlobStore shared = where == null ? null : remote.open(where, s.scratch())) {
      new ImageBuilder(
              s,
              rt,
              System.out::println,
              RegistryClient.Options.defaults(),
              where == null ? null : new ImageBuilder.SharedCache(shared, where))
          .build(
              Files.readString(dockerfile, StandardCharsets.UTF_8),
              context,
              ImageRef.parse(tag),
              args,
              force);
    }
    return 0;
  }
}
