package dev.skiff.casfs.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** What every {@link BlobStore} must do. Subclasses supply the store. */
public abstract class BlobStoreContract {
  protected BlobStore store;

  protected abstract BlobStore newStore() throws Exception;

  @BeforeEach
  void open() throws Exception {
    store = newStore();
  }

  @AfterEach
  void close() throws Exception {
    store.close();
  }

  private void put(String name, String content) throws IOException {
    store.put(name, new ByteArrayInputStream(content.getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void rangedReadsReturnExactlyTheRange() throws IOException {
    put("packs/x/abc", "0123456789");
    assertEquals(
        "345", StandardCharsets.UTF_8.decode(store.readFully("packs/x/abc", 3, 3)).toString());
    ByteBuffer tail = ByteBuffer.allocate(100);
    assertEquals(2, store.read("packs/x/abc", 8, 100, tail));
    assertEquals(Optional.of(10L), store.size("packs/x/abc"));
    assertEquals(
        "0123456789",
        new String(store.readAll("packs/x/abc").orElseThrow(), StandardCharsets.UTF_8));
  }

  @Test
  void readFullyPastTheEndNamesTheBlob() throws IOException {
    put("packs/x/short", "abc");
    IOException e = assertThrows(IOException.class, () -> store.readFully("packs/x/short", 1, 10));
    assertTrue(e.getMessage().contains("packs/x/short"), e.getMessage());
  }

  @Test
  void missingBlobsAreNotFound() throws IOException {
    assertThrows(BlobNotFoundException.class, () -> store.readFully("packs/x/none", 0, 1));
    assertEquals(Optional.empty(), store.size("packs/x/none"));
    assertEquals(Optional.empty(), store.readAll("packs/x/none"));
    assertFalse(store.exists("packs/x/none"));
    assertFalse(store.delete("packs/x/none"));
  }

  @Test
  void putReplacesWholeBlobs() throws IOException {
    put("refs/a/b", "first version");
    store.readFully("refs/a/b", 0, 5);
    put("refs/a/b", "second");
    assertArrayEquals(
        "second".getBytes(StandardCharsets.UTF_8), store.readFully("refs/a/b", 0, 6).array());
    assertEquals(Optional.of(6L), store.size("refs/a/b"));
    assertEquals(
        "second", new String(store.readAll("refs/a/b").orElseThrow(), StandardCharsets.UTF_8));
  }

  @Test
  void listIsSortedAndScopedToThePrefix() throws IOException {
    put("refs/b/1", "x");
    put("refs/a/2", "x");
    put("packs/p/1", "x");
    assertEquals(List.of("refs/a/2", "refs/b/1"), store.list("refs/"));
    assertTrue(store.delete("refs/a/2"));
    assertEquals(List.of("refs/b/1"), store.list("refs/"));
  }

  @Test
  void namesThatCouldEscapeAreRefused() {
    for (String bad : new String[] {"../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", ""}) {
      assertThrows(IllegalArgumentException.class, () -> put(bad, "x"), bad);
    }
  }
}
