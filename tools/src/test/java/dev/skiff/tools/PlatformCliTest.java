package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.Environment;
import dev.skiff.runtime.testing.HostRootfs;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The platform from the command line, as a user runs it: {@code skiff serve} (and {@code skiff
 * scheduler} with {@code skiff worker}) in processes of their own, the client commands against
 * them, and the faults a daemon lives through: a worker and a scheduler killed with SIGKILL.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(600)
class PlatformCliTest {
  @TempDir static Path tmp;

  Path home;
  Path code;
  final List<SkiffProcess> daemons = new ArrayList<>();

  @BeforeAll
  void setUp() throws Exception {
    Environment.requireRunsc();
    home = tmp.resolve("home");
    Path rootfs = HostRootfs.python().build(tmp.resolve("rootfs"));
    Cli.run(0, "import", "--store", home.toString(), rootfs.toString(), "py:1");
    code = Files.createDirectories(tmp.resolve("code"));
    Files.writeString(
        code.resolve("handlers.py"),
        """
        import os, time
        def square(x):
            print("squaring", x)
            return x * x
        def fail(x):
            raise ValueError("cannot take " + str(x))
        def nap(seconds, x=0):
            time.sleep(seconds)
            return x
        def env(name):
            return os.environ.get(name)
        def echo(x):
            return x
        """);
  }

  @AfterAll
  void tearDown() throws Exception {
    for (SkiffProcess d : daemons) {
      if (d.process.isAlive()) {
        d.signal("TERM"); // a daemon stops its containers and unmounts as it goes
      }
    }
    for (SkiffProcess d : daemons) {
      if (!d.process.waitFor(60, java.util.concurrent.TimeUnit.SECONDS)) {
        d.process.destroyForcibly().waitFor();
      }
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static void await(String what, BooleanSupplier ok, int seconds) throws Exception {
    for (int i = 0; i < seconds * 10; i++) {
      if (ok.getAsBoolean()) {
        return;
      }
      Thread.sleep(100);
    }
    throw new AssertionError("timed out waiting for " + what);
  }

  private SkiffProcess daemon(Path home, String... args) throws IOException {
    List<String> all = new ArrayList<>(List.of(args));
    all.addAll(List.of("--store", home.toString()));
    SkiffProcess p = new SkiffProcess(all.toArray(String[]::new));
    daemons.add(p);
    return p;
  }

  private String[] at(Path home, String... args) {
    List<String> all = new ArrayList<>(List.of(args));
    all.addAll(List.of("--store", home.toString()));
    return all.toArray(String[]::new);
  }

  private String skiff(int exit, String... args) {
    return Cli.run(exit, at(home, args));
  }

  @Test
  void serveRunsFunctionsForTheClientCommandsOfItsHome() throws Exception {
    String noServe = Cli.run(1, "functions", "--store", tmp.resolve("empty").toString());
    assertTrue(noServe.contains("no scheduler: start one with skiff serve"), noServe);

    SkiffProcess serve =
        daemon(
            home,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--gpus",
            "A100-80GB",
            "--python",
            "/usr/bin/python3");
    await("serve to start", () -> serve.out().contains("client token"), 120);
    Path served = home.resolve("serve.json");
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(served)));
    assertTrue(serve.out().contains("worker local attached"), serve.out());

    String d =
        skiff(
            0,
            "function",
            "deploy",
            "t/sq",
            "--image",
            "py:1",
            "--python",
            "handlers:square",
            "--code",
            code.toString());
    assertTrue(d.contains("deployed t/sq version 1"), d);
    assertEquals("9\n", skiff(0, "function", "call", "t/sq", "3"));
    assertEquals("16\n", skiff(0, "function", "call", "t/sq", "{\"x\": 4}"));

    skiff(
        0,
        "function",
        "deploy",
        "t/fail",
        "--image",
        "py:1",
        "--python",
        "handlers:fail",
        "--code",
        code.toString());
    String failed = skiff(1, "function", "call", "t/fail", "5");
    assertTrue(failed.contains("ValueError: cannot take 5 (handler error"), failed);
    assertTrue(failed.contains("in fail"), failed);

    String bad = skiff(1, "function", "call", "t/sq", "{oops");
    assertTrue(bad.contains("the input is not JSON"), bad);
    String unknown = skiff(1, "function", "call", "t/none", "1");
    assertTrue(unknown.contains("no function t/none"), unknown);

    String id = skiff(0, "function", "spawn", "t/sq", "[6]").strip();
    assertTrue(id.startsWith("call-"), id);
    assertEquals("36\n", skiff(0, "call", "get", id));
    await("the call's log line", () -> skiff(0, "logs", id).contains("squaring 6"), 30);
    assertTrue(skiff(0, "logs", "t/sq").contains(id + " squaring 6"));

    SkiffProcess map = new SkiffProcess(at(home, "function", "map", "t/sq", "--window", "50"));
    StringBuilder lines = new StringBuilder();
    for (int i = 0; i < 300; i++) {
      lines.append(i).append('\n');
    }
    map.input(lines.toString());
    assertEquals(0, map.exit(), map.err());
    String[] out = map.out().split("\n");
    assertEquals(300, out.length);
    for (int i = 0; i < 300; i++) {
      assertEquals(Integer.toString(i * i), out[i]);
    }

    SkiffProcess errors =
        new SkiffProcess(at(home, "function", "map", "t/fail", "--return-exceptions"));
    errors.input("1\n2\n");
    assertEquals(0, errors.exit(), errors.err());
    assertTrue(errors.out().split("\n")[1].contains("\"message\":\"cannot take 2\""), errors.out());

    // an input and a result over 2 MiB go through the payload store in HOME/control/payloads
    skiff(
        0,
        "function",
        "deploy",
        "t/echo",
        "--image",
        "py:1",
        "--python",
        "handlers:echo",
        "--code",
        code.toString());
    String large = "\"" + "x".repeat(3 << 20) + "\"";
    SkiffProcess echo = new SkiffProcess(at(home, "function", "map", "t/echo"));
    echo.input(large + "\n\"small\"\n");
    assertEquals(0, echo.exit(), echo.err());
    assertEquals(large + "\n\"small\"\n", echo.out());
    try (var payloads = Files.list(home.resolve("control/payloads"))) {
      assertEquals(2, payloads.count(), "the input and the result, one payload each");
    }

    skiff(0, "secret", "create", "db", "PASSWORD=hunter2");
    skiff(
        0,
        "function",
        "deploy",
        "t/env",
        "--image",
        "py:1",
        "--python",
        "handlers:env",
        "--code",
        code.toString(),
        "--secret",
        "db");
    assertEquals("\"hunter2\"\n", skiff(0, "function", "call", "t/env", "\"PASSWORD\""));
    assertEquals("db\n", skiff(0, "secret", "ls"));

    String h100 =
        skiff(
            0,
            "function",
            "deploy",
            "t/h100",
            "--image",
            "py:1",
            "--python",
            "handlers:square",
            "--code",
            code.toString(),
            "--gpu",
            "H100");
    assertTrue(h100.contains("no worker attached has GPU H100 (their GPUs: A100-80GBx1)"), h100);

    String workers = skiff(0, "workers");
    assertTrue(
        workers.contains("local") && workers.contains("A100-80GB") && workers.contains("py:1"),
        workers);
    assertTrue(skiff(0, "containers").contains("t/sq"));
    String functions = skiff(0, "functions");
    assertTrue(functions.contains("t/sq") && functions.contains("handlers:square"), functions);
    assertTrue(skiff(0, "apps").contains("t "));
    assertTrue(skiff(0, "calls", "t/sq").contains("success"));

    Map<String, String> wrong = Map.of("SKIFF_TOKEN", "nope");
    SkiffProcess refused = new SkiffProcess(wrong, List.of(), at(home, "functions"));
    assertEquals(1, refused.exit());
    assertTrue(refused.err().contains("refused the token"), refused.err());

    // skiff run and restore of this home hand their work to serve's runtime
    String h = home.toString();
    Path socket = home.resolve("run/daemon.sock");
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
    SkiffProcess run =
        new SkiffProcess(
            "run", "--store", h, "py:1", "--", "/usr/bin/python3", "-c", "print('hi from run')");
    assertEquals(0, run.exit(), run.err());
    assertEquals("hi from run\n", run.out());
    SkiffProcess piped =
        new SkiffProcess(
                "run",
                "-i",
                "--store",
                h,
                "py:1",
                "--",
                "/usr/bin/python3",
                "-c",
                "import sys; print(sys.stdin.read().upper()); sys.exit(3)")
            .input("through the daemon");
    assertEquals(3, piped.exit(), piped.err());
    assertEquals("THROUGH THE DAEMON\n", piped.out());
    SkiffProcess late =
        new SkiffProcess(
            "run",
            "--store",
            h,
            "--timeout",
            "1s",
            "py:1",
            "--",
            "/usr/bin/python3",
            "-c",
            "import time; time.sleep(30)");
    assertEquals(124, late.exit(), late.err());
    assertTrue(late.err().contains("timed out after"), late.err());
    SkiffProcess missing = new SkiffProcess("run", "--store", h, "nothing:1", "--", "/bin/true");
    assertEquals(1, missing.exit());
    assertTrue(missing.err().contains("no image nothing:1"), missing.err());
    SkiffProcess snap =
        new SkiffProcess(
            "snapshot",
            "create",
            "--store",
            h,
            "--ready-timeout",
            "60s",
            "py:1",
            "warm",
            "--",
            "/usr/bin/python3",
            "-c",
            "import sys, json; state = 'imported'; print('skiff:ready', flush=True);"
                + " print(sys.stdin.readline().strip() + ' ' + state)");
    assertEquals(0, snap.exit(), snap.err());
    SkiffProcess restored =
        new SkiffProcess("restore", "-i", "--store", h, "py:1", "warm").input("restored\n");
    assertEquals(0, restored.exit(), restored.err());
    assertEquals("restored imported\n", restored.out());
    await(
        "the daemon's run and restored sandboxes to be gone",
        () ->
            Cli.run(0, "ps", "--store", h)
                .lines()
                .noneMatch(l -> l.contains(" run ") || l.contains(" restored ")),
        30);
    String log = serve.err();
    assertTrue(
        log.contains("daemon: run py:1") && log.contains("daemon: restore py:1"),
        "serve ran them: " + log);
    long handed = log.lines().filter(l -> l.contains("daemon: ")).count();
    SkiffProcess own =
        new SkiffProcess(
            Map.of("SKIFF_NO_DAEMON", "1"),
            List.of(),
            "run",
            "--store",
            h,
            "py:1",
            "--",
            "/usr/bin/python3",
            "-c",
            "print('in-process')");
    assertEquals(0, own.exit(), own.err());
    assertEquals("in-process\n", own.out());
    assertEquals(
        handed, serve.err().lines().filter(l -> l.contains("daemon: ")).count(), "not handed off");

    serve.signal("TERM");
    assertEquals(143, serve.exit(), serve.err()); // 128 + SIGTERM, after a clean stop
    assertTrue(Files.notExists(served), "serve removes its file when it stops");
    assertTrue(Files.notExists(socket), "and its socket");
  }

  @Test
  void callsSurviveAWorkerAndTheSchedulerKilledMidWay() throws Exception {
    Path h = tmp.resolve("faults");
    Cli.run(0, "import", "--store", h.toString(), tmp.resolve("rootfs").toString(), "py:1");
    int port = freePort();
    String address = "127.0.0.1:" + port;
    SkiffProcess scheduler = daemon(h, "scheduler", "--listen", address);
    await("the scheduler", () -> scheduler.out().contains("listening"), 60);
    SkiffProcess worker =
        daemon(
            h,
            "worker",
            "--scheduler",
            address,
            "--worker-id",
            "w1",
            "--gpus",
            "none",
            "--python",
            "/usr/bin/python3");
    await("the worker", () -> worker.out().contains("attached"), 120);
    String[] client = {"--scheduler", address};

    Cli.run(
        0,
        at(
            h,
            "function",
            "deploy",
            "t/nap",
            "--image",
            "py:1",
            "--python",
            "handlers:nap",
            "--code",
            code.toString(),
            client[0],
            client[1]));
    Cli.run(0, at(h, "function", "call", "t/nap", "[0, 1]", client[0], client[1]));
    Cli.run(
        0,
        at(
            h,
            "function",
            "deploy",
            "t/sq",
            "--image",
            "py:1",
            "--python",
            "handlers:square",
            "--code",
            code.toString(),
            client[0],
            client[1]));
    String printed =
        Cli.run(0, at(h, "function", "spawn", "t/sq", "[5]", client[0], client[1])).strip();
    assertEquals("25\n", Cli.run(0, at(h, "call", "get", printed, client[0], client[1])));

    // A worker killed mid-call: the call runs again on the worker restarted, and ends once.
    String id =
        Cli.run(0, at(h, "function", "spawn", "t/nap", "[3, 7]", client[0], client[1])).strip();
    await(
        "the call to run",
        () ->
            Cli.run(0, at(h, "calls", client[0], client[1]))
                .lines()
                .anyMatch(l -> l.startsWith(id) && l.contains("running")),
        60);
    worker.signal("KILL");
    worker.exit();
    SkiffProcess again =
        daemon(
            h,
            "worker",
            "--scheduler",
            address,
            "--worker-id",
            "w1",
            "--gpus",
            "none",
            "--python",
            "/usr/bin/python3");
    assertEquals("7\n", Cli.run(0, at(h, "call", "get", id, client[0], client[1])));
    String calls = Cli.run(0, at(h, "calls", client[0], client[1]));
    assertTrue(calls.lines().anyMatch(l -> l.startsWith(id) && l.contains("1+1p")), calls);

    // The scheduler killed with calls in flight: a restart finishes every accepted one, once.
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      ids.add(
          Cli.run(0, at(h, "function", "spawn", "t/nap", "[0.2, " + i + "]", client[0], client[1]))
              .strip());
    }
    scheduler.signal("KILL");
    scheduler.exit();
    SkiffProcess restarted = daemon(h, "scheduler", "--listen", address);
    await("the scheduler again", () -> restarted.out().contains("listening"), 60);
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < ids.size(); i++) {
      assertEquals(
          i + "\n", Cli.run(0, at(h, "call", "get", ids.get(i), client[0], client[1])), ids.get(i));
      assertTrue(seen.add(ids.get(i)));
    }
    assertTrue(
        again.process.isAlive(), "the worker attached to the restarted scheduler: " + again.err());
    // what the handler printed before the kill is still there (logs are on disk)
    assertTrue(
        Cli.run(0, at(h, "logs", "t/sq", client[0], client[1])).contains("squaring 5"),
        "the function's logs outlive the scheduler");
    assertEquals(
        "squaring 5\n", Cli.run(0, at(h, "logs", printed, client[0], client[1])), "the call's");
  }
}
