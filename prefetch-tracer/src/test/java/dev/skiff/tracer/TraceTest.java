package dev.skiff.tracer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.digest.DigestAlgorithm;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class TraceTest {
  static Digest d(String s) {
    return DigestAlgorithm.XXH3_128.digest(s.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void roundTripsAndKeepsFirstAccessOrder() throws IOException {
    Trace t =
        new Trace(
            DigestAlgorithm.XXH3_128,
            1,
            List.of(
                new Trace.Entry(d("b"), 200, 10, 1, 0, "/lib/b.py"),
                new Trace.Entry(d("a"), 100, 20, 1, 0, "/lib/a.py"),
                new Trace.Entry(d("c"), 300, 30, 1, 0, "/lib/b.py")));
    Trace back = Trace.decode(t.encode());
    assertEquals(
        List.of(d("a"), d("b"), d("c")), back.entries().stream().map(Trace.Entry::digest).toList());
    assertEquals(t.entries(), back.entries());
    assertEquals(60, back.bytes());
  }

  @Test
  void recordingsMergeIntoTypicalTimes() {
    Trace first =
        new Trace(
            DigestAlgorithm.XXH3_128,
            1,
            List.of(
                new Trace.Entry(d("a"), 100, 1, 1, 0, "a"),
                new Trace.Entry(d("b"), 300, 1, 1, 0, "b")));
    Trace second =
        new Trace(
            DigestAlgorithm.XXH3_128,
            1,
            List.of(
                new Trace.Entry(d("b"), 100, 1, 1, 0, "b"),
                new Trace.Entry(d("c"), 50, 1, 1, 0, "c")));
    Trace merged = first.merge(second);
    assertEquals(2, merged.recordings());
    assertEquals(List.of("c", "a", "b"), merged.entries().stream().map(Trace.Entry::path).toList());
    assertEquals(200, merged.entries().get(2).micros(), "b's time is the mean of 300 and 100");
    assertEquals(2, merged.entries().get(2).samples());
  }

  @Test
  void anImagesTracesTravelWithIt(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp)
      throws IOException {
    try (var a = dev.skiff.casfs.store.BlobStores.local(tmp.resolve("a"));
        var b = dev.skiff.casfs.store.BlobStores.local(tmp.resolve("b"))) {
      Digest image = d("image");
      Digest other = d("other image");
      Trace t =
          new Trace(
              DigestAlgorithm.XXH3_128, 1, List.of(new Trace.Entry(d("x"), 1, 1, 1, 0, "/x")));
      TraceStore.save(a, image, null, t);
      TraceStore.save(a, image, "serve", t);
      TraceStore.save(a, other, null, t);
      assertEquals(2, TraceStore.copyAll(a, b, image));
      assertEquals(t.entries(), TraceStore.load(b, image, "serve").orElseThrow().entries());
      assertEquals(java.util.Optional.empty(), TraceStore.load(b, other, null));
    }
  }

  @Test
  void garbageIsRefused() {
    assertThrows(
        IOException.class,
        () -> Trace.decode("not a trace at all".getBytes(StandardCharsets.UTF_8)));
  }
}
