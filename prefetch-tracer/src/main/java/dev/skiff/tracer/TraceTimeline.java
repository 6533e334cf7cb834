package dev.skiff.tracer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Draws a start as a self-contained HTML page: one row per file in order of first access, a bar
 * from its first to its last chunk access, green where its chunks were already fetched when read
 * (prefetch hits), red where the reader had to wait (demand misses), orange where both happened. A
 * person should see at a glance where a cold start spends its time and what prefetch covered.
 */
public final class TraceTimeline {
  private static final int MAX_ROWS = 3000;
  private static final int LABEL = 420;
  private static final int PLOT = 640;
  private static final int ROW = 16;

  private TraceTimeline() {}

  /** One file's share of a trace. */
  record FileRow(
      String path, long firstMicros, long lastMicros, long bytes, int chunks, double readyShare) {}

  static List<FileRow> rows(Trace trace) {
    Map<String, long[]> acc = new LinkedHashMap<>();
    for (Trace.Entry e : trace.entries()) {
      long[] a =
          acc.computeIfAbsent(e.path(), p -> new long[] {e.micros(), e.micros(), 0, 0, 0, 0});
      a[0] = Math.min(a[0], e.micros());
      a[1] = Math.max(a[1], e.micros());
      a[2] += e.plainLength();
      a[3]++;
      a[4] += e.readyHits();
      a[5] += e.samples();
    }
    List<FileRow> rows = new ArrayList<>();
    acc.forEach(
        (path, a) ->
            rows.add(
                new FileRow(
                    path, a[0], a[1], a[2], (int) a[3], a[5] == 0 ? 0 : (double) a[4] / a[5])));
    return rows;
  }

  public static String html(Trace trace, String title) {
    List<FileRow> rows = rows(trace);
    long end = Math.max(1, trace.entries().stream().mapToLong(Trace.Entry::micros).max().orElse(1));
    long hits = trace.entries().stream().mapToLong(Trace.Entry::readyHits).sum();
    long samples = trace.entries().stream().mapToLong(Trace.Entry::samples).sum();
    int shown = Math.min(rows.size(), MAX_ROWS);
    int height = 40 + shown * ROW;
    StringBuilder b = new StringBuilder(4096 + shown * 300);
    b.append("<!doctype html><html><head><meta charset=\"utf-8\"><title>")
        .append(esc(title))
        .append("</title>")
        .append("<style>body{font:13px system-ui,sans-serif;margin:16px;color:#222}")
        .append("td,th{padding:2px 8px;text-align:right}th{background:#eee}td.p{text-align:left}")
        .append(
            ".k{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}</style></head><body>")
        .append("<h2>")
        .append(esc(title))
        .append("</h2><p>")
        .append(
            String.format(
                Locale.ROOT,
                "%d recordings, %d chunks, %.1f MiB in %d files, over %.1f ms. ",
                trace.recordings(),
                trace.entries().size(),
                trace.bytes() / 1048576.0,
                rows.size(),
                end / 1000.0))
        .append(
            String.format(
                Locale.ROOT,
                "First reads that found the chunk already fetched (prefetch hits): %d of %d.",
                hits,
                samples))
        .append("</p><p><span class=k style=\"background:#2e9e44\"></span>prefetch hits")
        .append("<span class=k style=\"background:#e39b1b\"></span>some of each")
        .append("<span class=k style=\"background:#d33\"></span>demand misses</p>");
    b.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"")
        .append(LABEL + PLOT + 20)
        .append("\" height=\"")
        .append(height)
        .append("\">");
    for (int t = 0; t <= 4; t++) {
      int x = LABEL + PLOT * t / 4;
      b.append(
          String.format(
              Locale.ROOT,
              "<line x1=\"%d\" y1=\"20\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>"
                  + "<text x=\"%d\" y=\"14\" font-size=\"11\" text-anchor=\"middle\">%.0f ms</text>",
              x,
              x,
              height,
              x,
              end * t / 4 / 1000.0));
    }
    for (int i = 0; i < shown; i++) {
      FileRow r = rows.get(i);
      int y = 24 + i * ROW;
      double x0 = LABEL + PLOT * (double) r.firstMicros() / end;
      double w = Math.max(3, PLOT * (double) (r.lastMicros() - r.firstMicros()) / end);
      String color =
          r.readyShare() >= 0.999 ? "#2e9e44" : r.readyShare() <= 0.001 ? "#d33" : "#e39b1b";
      b.append(
          String.format(
              Locale.ROOT,
              "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%s</text>",
              LABEL - 6,
              y + 11,
              esc(shorten(r.path()))));
      b.append(
          String.format(
              Locale.ROOT,
              "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"12\" fill=\"%s\">"
                  + "<title>%s: %d chunks, %.1f KiB, first read at %.1f ms, %.0f%% prefetch hits</title></rect>",
              x0,
              y + 1,
              w,
              color,
              esc(r.path()),
              r.chunks(),
              r.bytes() / 1024.0,
              r.firstMicros() / 1000.0,
              r.readyShare() * 100));
    }
    b.append("</svg>");
    if (rows.size() > shown) {
      b.append("<p>").append(rows.size() - shown).append(" more files not drawn.</p>");
    }
    b.append(
        "<table><tr><th>first read (ms)</th><th>chunks</th><th>KiB</th><th>prefetch hits</th><th>file</th></tr>");
    for (int i = 0; i < shown; i++) {
      FileRow r = rows.get(i);
      b.append(
          String.format(
              Locale.ROOT,
              "<tr><td>%.1f</td><td>%d</td><td>%.1f</td><td>%.0f%%</td><td class=p>%s</td></tr>",
              r.firstMicros() / 1000.0,
              r.chunks(),
              r.bytes() / 1024.0,
              r.readyShare() * 100,
              esc(r.path())));
    }
    return b.append("</table></body></html>\n").toString();
  }

  private static String shorten(String p) {
    return p.length() <= 64 ? p : "..." + p.substring(p.length() - 61);
  }

  static String esc(String s) {
    return s.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\"", "&quot;");
  }
}
