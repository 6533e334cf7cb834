package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.fuse.MountTable;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.runtime.testing.HostRootfs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** skiff run, ps, kill, snapshot and restore as a user runs them, in their own JVMs, as root. */
@Timeout(300)
class RunCliTest {
  @TempDir Path tmp;

  String home;

  @BeforeEach
  void setUp() throws Exception {
    Environment.requireRunsc();
    home = tmp.resolve("home").toString();
    Path rootfs = HostRootfs.tools().build(tmp.resolve("rootfs"));
    Cli.run(0, "import", "-q", "--store", home, rootfs.toString(), "tools:1");
  }

  /** {@code skiff COMMAND [SUBCOMMAND] --store=HOME ARGS...}. */
  private SkiffProcess skiff(String... args) throws IOException {
    List<String> all = new java.util.ArrayList<>(List.of(args));
    all.add(args[0].equals("snapshot") ? 2 : 1, "--store=" + home);
    return new SkiffProcess(all.toArray(String[]::new));
  }

  private List<Path> sandboxDirs() throws IOException {
    Path d = Path.of(home, "run", "sandboxes");
    if (!Files.isDirectory(d)) {
      return List.of();
    }
    try (Stream<Path> s = Files.list(d)) {
      return s.toList();
    }
  }

  /** Waits until exactly one sandbox exists and is running; returns its id. */
  private String awaitRunning() throws Exception {
    for (int i = 0; i < 300; i++) {
      String ps = Cli.run(0, "ps", "--store", home);
      if (ps.contains(" running ")) {
        return ps.lines()
            .filter(l -> l.contains(" running "))
            .findFirst()
            .orElseThrow()
            .split(" ")[0];
      }
      Thread.sleep(100);
    }
    throw new AssertionError("no running sandbox: " + Cli.run(0, "ps", "--store", home));
  }

  private void assertNothingLeft() throws Exception {
    assertEquals(List.of(), sandboxDirs());
    assertTrue(
        MountTable.read().stream().noneMatch(m -> m.mountpoint().startsWith(Path.of(home))),
        MountTable.read().toString());
    String list = "";
    for (int i = 0; i < 50; i++) { // a restored sandbox's runsc record goes a moment after it stops
      list =
          new String(
                  new ProcessBuilder("runsc", "--root=" + home + "/run/runsc", "list", "-quiet")
                      .start()
                      .getInputStream()
                      .readAllBytes())
              .strip();
      if (list.isEmpty()) {
        break;
      }
      Thread.sleep(100);
    }
    assertEquals("", list);
  }

  @Test
  void runStreamsOutputAndReturnsTheExitCode() throws Exception {
    SkiffProcess p =
        skiff("run", "tools:1", "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 5");
    assertEquals(5, p.exit(), p.err());
    assertEquals("out\n", p.out());
    assertTrue(p.err().endsWith("err\n"), p.err());

    p = skiff("run", "-i", "tools:1", "--", "/bin/cat").input("typed in\n");
    assertEquals(0, p.exit(), p.err());
    assertEquals("typed in\n", p.out());

    p = skiff("run", "--timeout", "1s", "tools:1", "--", "/bin/sleep", "60");
    assertEquals(124, p.exit(), p.err());
    assertTrue(p.err().contains("timed out after"), p.err());

    p = skiff("run", "tools:1", "--", "/no/such/program");
    assertTrue(p.exit() != 0);
    p = skiff("run", "nope:1", "--", "/bin/true");
    assertEquals(1, p.exit());
    assertTrue(p.err().contains("no image nope:1"), p.err());
    assertNothingLeft();
  }

  @Test
  void runUsesTheMountThatSkiffMountServes() throws Exception {
    Path mp = tmp.resolve("mnt");
    MountProcess m = new MountProcess(mp, java.util.Map.of(), "--store", home, "tools:1");
    Path registry = Path.of(home, "run", "mounts");
    try (Stream<Path> s = Files.list(registry)) {
      assertEquals(1, s.filter(p -> p.toString().endsWith(".json")).count());
    }
    SkiffProcess p = skiff("run", "tools:1", "--", "/bin/echo", "on the shared mount");
    assertEquals(0, p.exit(), p.err());
    assertEquals("on the shared mount\n", p.out());
    try (Stream<Path> s = Files.list(registry)) { // the run made no mount of its own
      assertTrue(s.noneMatch(Files::isDirectory));
    }
    assertTrue(MountTable.fuseMountAt(mp) != null);
    assertEquals(0, SkiffCli.execute("umount", mp.toString()));
    assertTrue(m.process.waitFor(30, java.util.concurrent.TimeUnit.SECONDS));
    try (Stream<Path> s = Files.list(registry)) {
      assertEquals(0, s.count());
    }
    assertNothingLeft();
  }

  @Test
  void concurrentRunsOfOneImageBothComplete() throws Exception {
    SkiffProcess first = skiff("run", "tools:1", "--", "/bin/sleep", "2");
    awaitRunning();
    SkiffProcess second =
        skiff("run", "tools:1", "--", "/bin/sh", "-c", "sleep 4; head -1 /etc/passwd");
    assertEquals(0, first.exit(), first.err());
    assertEquals(0, second.exit(), second.err()); // reads the image after the first run ended
    assertEquals("root:x:0:0:root:/root:/bin/sh\n", second.out());
    assertNothingLeft();
  }

  @Test
  void ctrlCTearsTheSandboxDown() throws Exception {
    SkiffProcess p = skiff("run", "tools:1", "--", "/bin/sleep", "60");
    awaitRunning();
    p.signal("INT");
    p.exit();
    assertNothingLeft();
  }

  @Test
  void skiffKillEndsASandboxAndItsOwnerCleansUp() throws Exception {
    SkiffProcess p = skiff("run", "tools:1", "--", "/bin/sleep", "60");
    String id = awaitRunning();
    assertTrue(Cli.run(0, "kill", "--store", home, id).contains("killed " + id));
    assertEquals(128 + 9, p.exit());
    assertNothingLeft();
    assertTrue(Cli.run(1, "kill", "--store", home, "sb-000000000000").contains("no sandbox"));
  }

  @Test
  void whatAKilledRuntimeLeftIsCleanedByTheNextStart() throws Exception {
    SkiffProcess p = skiff("run", "tools:1", "--", "/bin/sleep", "60");
    String id = awaitRunning();
    p.signal("KILL");
    p.exit();
    assertFalse(sandboxDirs().isEmpty());
    String ps = Cli.run(0, "ps", "--store", home);
    assertTrue(ps.contains("cleaned up sandbox " + id) && ps.contains("which is gone"), ps);
    assertNothingLeft();
  }

  @Test
  void snapshotThenRestoreSkipsTheStartUp() throws Exception {
    SkiffProcess p =
        skiff(
            "snapshot",
            "create",
            "--ready-timeout",
            "60s",
            "tools:1",
            "warm",
            "--",
            "/bin/sh",
            "-c",
            "state=prepared; echo starting; echo skiff:ready; read line; echo \"$line from $state\"");
    assertEquals(0, p.exit(), p.err());
    assertTrue(p.out().startsWith("starting\nsnapshot warm of tools:1"), p.out());
    assertTrue(Cli.run(0, "snapshot", "ls", "--store", home, "tools:1").contains("warm"));
    for (String input : List.of("first", "second")) {
      SkiffProcess r = skiff("restore", "-i", "tools:1", "warm").input(input + "\n");
      assertEquals(0, r.exit(), r.err());
      assertEquals(input + " from prepared\n", r.out());
    }
    p =
        skiff(
            "snapshot",
            "create",
            "--ready-timeout",
            "60s",
            "tools:1",
            "never",
            "--",
            "/bin/sh",
            "-c",
            "exit 3");
    assertEquals(1, p.exit());
    assertTrue(
        p.err().contains("did not print 'skiff:ready'") && p.err().contains("exited with 3"),
        p.err());
    Cli.run(0, "snapshot", "rm", "--store", home, "tools:1", "warm");
    assertTrue(
        Cli.run(1, "restore", "--store", home, "tools:1", "warm").contains("no snapshot 'warm'"));
    assertNothingLeft();
  }
}
