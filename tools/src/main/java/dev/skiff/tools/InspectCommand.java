package dev.skiff.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageInfo;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.NoSuchImageException;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.pack.ChunkLocation;
import dev.skiff.casfs.pack.Codec;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "inspect",
    mixinStandardHelpOptions = true,
    description =
        "Show an image's layers, config (env, cmd, entrypoint, workdir, user, labels) and chunk statistics.")
final class InspectCommand implements Callable<Integer> {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Mixin SkiffCli.StoreOptions store;

  @Mixin RemoteOptions remote;

  @Parameters(
      index = "0",
      paramLabel = "IMAGE",
      description = "NAME[:TAG], or s3://BUCKET[/PREFIX]/NAME[:TAG] (its index is pulled first)")
  String ref;

  @Option(names = "--config", description = "print the raw image config JSON and nothing else")
  boolean rawConfig;

  @Override
  public Integer call() throws Exception {
    try (ImageStore s = ImageStore.open(store.home())) {
      ImageRef r = Images.local(s, ImageSpec.parse(ref), remote);
      ImageInfo info = s.info(r).orElseThrow(() -> new NoSuchImageException(r, null));
      try (ImageIndex index = s.openIndex(info.index())) {
        String config = index.meta("config");
        if (rawConfig) {
          System.out.println(config == null ? "{}" : config);
          return 0;
        }
        System.out.printf(Locale.ROOT, "image     %s%n", r);
        System.out.printf(
            Locale.ROOT,
            "index     %s (%s, %s inodes)%n",
            info.index(),
            Human.bytes(info.indexBytes()),
            Human.count(index.inodeCount()));
        System.out.printf(Locale.ROOT, "source    %s%n", info.source());
        System.out.printf(Locale.ROOT, "imported  %s%n", info.imported());
        System.out.println("layers");
        JsonNode src = JSON.readTree(index.meta("source"));
        int n = 0;
        for (JsonNode l : src.path("layers")) {
          System.out.printf(
              Locale.ROOT,
              "  %2d  %-20s %10s  %s%n",
              ++n,
              l.path("digest").isNull() ? "(no digest)" : shortDigest(l.path("digest").asText()),
              l.path("size").asLong() < 0 ? "-" : Human.bytes(l.path("size").asLong()),
              l.path("mediaType").isNull() ? "" : l.path("mediaType").asText());
        }
        JsonNode c =
            config == null ? JSON.createObjectNode() : JSON.readTree(config).path("config");
        System.out.println("config");
        System.out.printf(
            Locale.ROOT,
            "  entrypoint  %s%n",
            c.path("Entrypoint").isMissingNode() ? "" : c.path("Entrypoint"));
        System.out.printf(
            Locale.ROOT, "  cmd         %s%n", c.path("Cmd").isMissingNode() ? "" : c.path("Cmd"));
        System.out.printf(Locale.ROOT, "  workdir     %s%n", c.path("WorkingDir").asText(""));
        System.out.printf(Locale.ROOT, "  user        %s%n", c.path("User").asText(""));
        for (JsonNode e : c.path("Env")) {
          System.out.printf(Locale.ROOT, "  env         %s%n", e.asText());
        }
        var labels = c.path("Labels").fields();
        while (labels.hasNext()) {
          var l = labels.next();
          System.out.printf(
              Locale.ROOT, "  label       %s=%s%n", l.getKey(), l.getValue().asText());
        }
        long stored = 0;
        long plain = 0;
        long zstd = 0;
        var chunks = index.allChunks();
        for (ChunkLocation loc : chunks.values()) {
          stored += loc.storedLength();
          plain += loc.plainLength();
          if (loc.codec() == Codec.ZSTD) {
            zstd++;
          }
        }
        System.out.println("chunks");
        System.out.printf(
            Locale.ROOT,
            "  size        %s (%s)%n",
            Human.bytes(index.chunkSize()),
            index.algorithm().label());
        System.out.printf(
            Locale.ROOT,
            "  unique      %s (%s zstd), %s plain -> %s stored, in %d packs%n",
            Human.count(chunks.size()),
            Human.count(zstd),
            Human.bytes(plain),
            Human.bytes(stored),
            index.packs().size());
        System.out.printf(
            Locale.ROOT,
            "  files       %s, %s logical; import added %s (dedup ratio %s)%n",
            Human.count(info.files()),
            Human.bytes(info.logicalBytes()),
            Human.bytes(info.newBytes()),
            Human.ratio(info.dedupRatio()));
      }
    }
    return 0;
  }

  private static String shortDigest(String d) {
    int colon = d.indexOf(':');
    return colon < 0 ? d : d.substring(0, Math.min(d.length(), colon + 13));
  }
}
