package dev.skiff.tracer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.digest.DigestAlgorithm;
import java.util.List;
import org.junit.jupiter.api.Test;

class TraceTimelineTest {
  @Test
  void oneRowPerFileColouredByPrefetchHits() {
    Trace t =
        new Trace(
            DigestAlgorithm.XXH3_128,
            1,
            List.of(
                new Trace.Entry(TraceTest.d("1"), 1000, 100, 1, 1, "/lib/<hit>.py"),
                new Trace.Entry(TraceTest.d("2"), 2000, 100, 1, 0, "/lib/miss.py"),
                new Trace.Entry(TraceTest.d("3"), 3000, 100, 1, 1, "/data/big.bin"),
                new Trace.Entry(TraceTest.d("4"), 9000, 100, 1, 0, "/data/big.bin")));
    List<TraceTimeline.FileRow> rows = TraceTimeline.rows(t);
    assertEquals(
        List.of("/lib/<hit>.py", "/lib/miss.py", "/data/big.bin"),
        rows.stream().map(TraceTimeline.FileRow::path).toList());
    assertEquals(0.5, rows.get(2).readyShare());
    assertEquals(6000, rows.get(2).lastMicros() - rows.get(2).firstMicros());
    String html = TraceTimeline.html(t, "trace of app:1");
    assertTrue(html.contains("<svg") && html.contains("</html>"));
    assertTrue(html.contains("/lib/&lt;hit&gt;.py"), "paths are escaped");
    assertFalse(html.contains("<hit>"));
    assertTrue(html.contains("#2e9e44") && html.contains("#d33") && html.contains("#e39b1b"));
    assertTrue(html.contains("prefetch hits): 2 of 4"));
  }
}
