package dev.skiff.casfs.image;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Bare root filesystems: a tarball (gzip, zstd or plain) or a directory on disk. One layer, no
 * config.
 */
final class RootfsSources {
  private RootfsSources() {}

  static ImageSource tarball(Path file) {
    return single(
        file.toString(),
        (max) -> LayerStreams.open(Files.newInputStream(file), file.toString(), null, null, max),
        sizeOf(file));
  }

  /**
   * A directory, read through GNU tar so that every file type, xattr, hardlink and raw byte name
   * comes through exactly as tar archives it.
   */
  static ImageSource directory(Path dir) {
    return single(
        dir.toString(),
        (max) -> {
          ProcessBuilder pb =
              new ProcessBuilder(
                  "tar",
                  "--create",
                  "--file=-",
                  "--format=posix",
                  "--numeric-owner",
                  "--xattrs",
                  "--xattrs-include=*",
                  "--pax-option=delete=atime,delete=ctime",
                  "--sparse",
                  "--directory=" + dir,
                  ".");
          pb.environment().put("LC_ALL", "C");
          pb.redirectError(ProcessBuilder.Redirect.PIPE);
          Process p = pb.start();
          CompletableFuture<String> err =
              CompletableFuture.supplyAsync(
                  () -> {
                    try {
                      return new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
                    } catch (IOException e) {
                      return e.toString();
                    }
                  });
          InputStream out =
              new FilterInputStream(p.getInputStream()) {
                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                  int n = super.read(b, off, len);
                  if (n < 0) {
                    checkExit();
                  }
                  return n;
                }

                private void checkExit() throws IOException {
                  try {
                    int rc = p.waitFor();
                    if (rc > 1) {
                      throw new ImportException(
                          dir.toString(),
                          null,
                          "tar failed reading the directory: " + err.join().strip());
                    }
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted", e);
                  }
                }

                @Override
                public void close() throws IOException {
                  super.close();
                  p.destroy();
                }
              };
          return LayerStreams.open(out, dir.toString(), null, null, max);
        },
        -1);
  }

  private static long sizeOf(Path f) {
    try {
      return Files.size(f);
    } catch (IOException e) {
      return -1;
    }
  }

  private static ImageSource single(String describe, ImageSource.Opener opener, long size) {
    return ImageSource.of(
        describe, null, List.of(ImageSource.Layer.of(describe, null, null, size, opener)));
  }
}
