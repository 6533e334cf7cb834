package dev.skiff.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A long map's progress line: drawn after a second and redrawn in place, ended with a newline; a
 * short map draws nothing; a program whose stderr is not a terminal gets no line at all.
 */
class ProgressTest {
  @Test
  void aLongMapRedrawsOneLineInPlaceAndEndsIt() throws Exception {
    ByteArrayOutputStream sink = new ByteArrayOutputStream();
    Progress p = Progress.start("app/f", new PrintStream(sink, true, StandardCharsets.UTF_8));
    for (int i = 0; i < 1200; i++) {
      p.sent();
    }
    for (int i = 0; i < 1000; i++) {
      p.done();
    }
    Thread.sleep(Progress.FIRST_DRAW_MS + 3 * Progress.REDRAW_MS);
    p.done();
    p.stop();
    String text = sink.toString(StandardCharsets.UTF_8);
    assertTrue(text.startsWith("\r  map app/f: 1,000 of 1,200 done, "), text);
    assertTrue(text.split("\r").length >= 3, "redrawn in place: " + text);
    assertTrue(text.endsWith("\n") && text.indexOf('\n') == text.length() - 1, text);
    String last = text.substring(text.lastIndexOf('\r'));
    assertTrue(last.startsWith("\r  map app/f: 1,001 of 1,200 done, "), last);
  }

  @Test
  void aMapThatEndsWithinASecondDrawsNothing() {
    ByteArrayOutputStream sink = new ByteArrayOutputStream();
    Progress p = Progress.start("app/f", new PrintStream(sink, true, StandardCharsets.UTF_8));
    p.sent();
    p.done();
    p.stop();
    assertEquals("", sink.toString(StandardCharsets.UTF_8));
  }

  /** Prints whether this program's stderr is a terminal, as the SDK decides it. */
  public static final class Probe {
    public static void main(String[] args) {
      System.out.println("terminal=" + Progress.onTerminal());
    }
  }

  @Test
  void onlyATerminalGetsTheLine() throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String cp = System.getProperty("java.class.path");
    List<String> probe = List.of(java, "-cp", cp, Probe.class.getName());
    assertEquals("terminal=false", run(probe).strip(), "with its output in a pipe");
    // Under a pseudo-terminal (script(1)), as in a user's shell.
    org.junit.jupiter.api.Assumptions.assumeTrue(
        Files.isExecutable(Path.of("/usr/bin/script")), "needs script(1) from util-linux");
    String command = String.join(" ", probe.stream().map(ProgressTest::quote).toList());
    String out = run(List.of("/usr/bin/script", "-qec", command, "/dev/null"));
    assertTrue(out.contains("terminal=true"), out);
  }

  private static String quote(String s) {
    return "'" + s.replace("'", "'\\''") + "'";
  }

  private static String run(List<String> command) throws Exception {
    Process p =
        new ProcessBuilder(command)
            .redirectErrorStream(true)
            .redirectInput(ProcessBuilder.Redirect.PIPE)
            .start();
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "still running: " + command);
    assertEquals(0, p.exitValue(), out);
    return out;
  }
}
