package dev.skiff.tools;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.NoSuchImageException;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.store.BlobStore;
import dev.skiff.casfs.store.S3Location;
import dev.skiff.tracer.Trace;
import dev.skiff.tracer.TraceStore;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "trace",
    mixinStandardHelpOptions = true,
    description = "Start-up traces of images.",
    subcommands = {TraceCommand.Show.class})
final class TraceCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  @Command(
      name = "show",
      mixinStandardHelpOptions = true,
      description = "What a start reads: files in order of first access, bytes, and a timeline.")
  static final class Show implements Callable<Integer> {
    @Mixin SkiffCli.StoreOptions store;

    @Mixin RemoteOptions remote;

    @Parameters(
        index = "0",
        paramLabel = "IMAGE",
        description = "NAME[:TAG], or s3://BUCKET[/PREFIX]/NAME[:TAG] (its index is pulled first)")
    String ref;

    @Option(
        names = "--trace-key",
        paramLabel = "KEY",
        description = "which start profile (default: the main one)")
    String traceKey;

    @Option(
        names = "--html",
        paramLabel = "FILE",
        description =
            "also draw the start as an HTML page: files on a timeline, prefetch hits against demand misses")
    java.nio.file.Path html;

    @Override
    public Integer call() throws Exception {
      try (ImageStore s = ImageStore.open(store.home())) {
        ImageRef r = Images.local(s, ImageSpec.parse(ref), remote);
        Digest d = s.resolve(r).orElseThrow(() -> new NoSuchImageException(r, null));
        Optional<S3Location> where = s.remoteOf(r);
        Optional<Trace> trace;
        if (where.isPresent()) {
          try (BlobStore b = remote.open(remote.relocate(where.get()), s.scratch())) {
            trace = TraceStore.load(b, d, traceKey);
          }
        } else {
          trace = TraceStore.load(s.blobs(), d, traceKey);
        }
        Trace t =
            trace.orElseThrow(
                () ->
                    new IllegalArgumentException(
                        "no trace for " + r + " yet: mount it with --record and run its start"));
        System.out.printf(
            Locale.ROOT,
            "trace of %s: %d recordings, %s chunks, %s%n",
            r,
            t.recordings(),
            Human.count(t.entries().size()),
            Human.bytes(t.bytes()));
        if (html != null) {
          java.nio.file.Files.writeString(
              html, dev.skiff.tracer.TraceTimeline.html(t, "Start-up trace of " + r));
          System.out.println("wrote " + html);
        }
        System.out.printf(
            Locale.ROOT, "%10s %6s %10s  %s%n", "FIRST(ms)", "CHUNKS", "BYTES", "FILE");
        String path = null;
        long first = 0;
        long bytes = 0;
        int chunks = 0;
        for (Trace.Entry e : t.entries()) {
          if (!e.path().equals(path)) {
            if (path != null) {
              System.out.printf(
                  Locale.ROOT,
                  "%10.1f %6d %10s  %s%n",
                  first / 1000.0,
                  chunks,
                  Human.bytes(bytes),
                  path);
            }
            path = e.path();
            first = e.micros();
            bytes = 0;
            chunks = 0;
          }
          bytes += e.plainLength();
          chunks++;
        }
        if (path != null) {
          System.out.printf(
              Locale.ROOT,
              "%10.1f %6d %10s  %s%n",
              first / 1000.0,
              chunks,
              Human.bytes(bytes),
              path);
        }
      }
      return 0;
    }
  }
}
