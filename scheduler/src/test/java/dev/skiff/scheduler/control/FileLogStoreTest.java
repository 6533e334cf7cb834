package dev.skiff.scheduler.control;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.scheduler.proto.LogLine;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileLogStoreTest {
  @TempDir Path tmp;

  private static LogLine line(String fn, String call, String text) {
    return LogLine.newBuilder().setFunctionId(fn).setCallId(call).setLine(text).build();
  }

  private static List<String> texts(List<LogLine> lines) {
    return lines.stream().map(LogLine::getLine).toList();
  }

  @Test
  void linesOutliveTheStoreAndAreFoundByFunctionAndByCall() throws Exception {
    FileLogStore s = new FileLogStore(tmp.resolve("logs"));
    s.append(line("app/a", "call-1", "one"));
    s.append(line("app/b", "call-2", "other"));
    s.append(line("app/a", "call-3", "two"));
    s.append(line("app/a", "call-1", "three"));
    s.flush();
    s.close();
    FileLogStore again = new FileLogStore(tmp.resolve("logs"));
    assertEquals(List.of("one", "two", "three"), texts(again.read("app/a", "", 10)));
    assertEquals(List.of("two", "three"), texts(again.read("app/a", "", 2)), "the latest");
    assertEquals(List.of("one", "three"), texts(again.read("app/a", "call-1", 10)));
    assertEquals(List.of("other"), texts(again.read("app/b", "", 10)));
    assertEquals(List.of(), again.read("app/none", "", 10));
    again.append(line("app/a", "call-4", "four"));
    assertEquals("four", again.read("app/a", "", 1).get(0).getLine(), "a read sees the buffer");
  }

  @Test
  void aFunctionKeepsAtMostTwoFilesAndTheNewestLines() throws Exception {
    FileLogStore s = new FileLogStore(tmp.resolve("logs"), 10_000);
    for (int i = 0; i < 2_000; i++) {
      s.append(line("app/a", "call-" + i, "line " + i + " " + "x".repeat(40)));
    }
    s.flush();
    try (var files = Files.list(tmp.resolve("logs"))) {
      List<Path> all = files.toList();
      assertEquals(2, all.size(), all.toString());
      for (Path p : all) {
        assertTrue(Files.size(p) < 12_000, p + " " + Files.size(p));
      }
    }
    List<LogLine> kept = s.read("app/a", "", 100_000);
    assertTrue(kept.size() > 100 && kept.size() < 500, "kept " + kept.size());
    assertTrue(kept.get(kept.size() - 1).getLine().startsWith("line 1999 "));
  }

  @Test
  void aLineCutShortByACrashEndsTheReadablePart() throws Exception {
    FileLogStore s = new FileLogStore(tmp.resolve("logs"));
    s.append(line("app/a", "c", "whole"));
    s.append(line("app/a", "c", "cut short"));
    s.close();
    Path f = tmp.resolve("logs/app%2Fa.log");
    try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
      ch.truncate(Files.size(f) - 3);
    }
    assertEquals(
        List.of("whole"), texts(new FileLogStore(tmp.resolve("logs")).read("app/a", "", 10)));
  }
}
