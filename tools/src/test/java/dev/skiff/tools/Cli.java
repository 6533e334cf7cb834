package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** Runs the CLI in this JVM and returns what it printed (stdout and stderr together). */
final class Cli {
  private Cli() {}

  static synchronized String run(int expectedExit, String... args) {
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    PrintStream capture = new PrintStream(buf, true, StandardCharsets.UTF_8);
    System.setOut(capture);
    System.setErr(capture);
    int code;
    try {
      code = SkiffCli.execute(args);
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
    String out = buf.toString(StandardCharsets.UTF_8);
    assertEquals(expectedExit, code, out);
    return out;
  }
}
