package dev.skiff.casfs.store;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalDirStoreTest extends BlobStoreContract {
  @TempDir Path dir;

  @Override
  protected BlobStore newStore() throws IOException {
    return BlobStores.local(dir);
  }

  @Test
  void aFailedPutLeavesNeitherTheBlobNorATemporaryFile() throws IOException {
    InputStream failing =
        new InputStream() {
          int n;

          @Override
          public int read() throws IOException {
            if (n++ > 1000) {
              throw new IOException("source died");
            }
            return 'x';
          }
        };
    try {
      store.put("packs/x/broken", failing);
    } catch (IOException expected) {
      // the point of the test
    }
    assertEquals(false, store.exists("packs/x/broken"));
    try (var s = Files.list(dir.resolve(".tmp"))) {
      assertEquals(0, s.count());
    }
    store.put("packs/x/ok", new ByteArrayInputStream(new byte[] {1}));
    assertEquals(true, store.exists("packs/x/ok"));
  }

  @Test
  void wholeBlobsReadKeepNoDescriptorOpen() throws IOException {
    for (int i = 0; i < 200; i++) {
      store.put("refs/app/" + i, new ByteArrayInputStream(("tag " + i).getBytes()));
    }
    long before = openDescriptors();
    for (int i = 0; i < 200; i++) {
      assertEquals("tag " + i, new String(store.readAll("refs/app/" + i).orElseThrow()));
    }
    // A daemon reads tags all day: each kept open would be a descriptor lost.
    assertEquals(before, openDescriptors(), "no descriptor left open by 200 whole reads");
  }

  private static long openDescriptors() throws IOException {
    try (var s = Files.list(Path.of("/proc/self/fd"))) {
      return s.count();
    }
  }
}
