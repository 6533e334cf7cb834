package dev.skiff.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.fuse.MountTable;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.runtime.testing.HostRootfs;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Sandboxes for real: runsc, a casfs mount of an image of host binaries, as root. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(120)
class SandboxTest {
  @TempDir static Path tmp;

  ImageStore store;
  GvisorRuntime rt;
  final List<RuntimeEvent> events = Collections.synchronizedList(new ArrayList<>());

  @BeforeAll
  void setUp() throws Exception {
    Environment.requireRunsc();
    store = ImageStore.open(tmp.resolve("home"));
    Path rootfs = HostRootfs.tools().build(tmp.resolve("rootfs"));
    store.importImage(rootfs.toString(), ImageRef.parse("tools:1"), ImportProgress.NONE);
    rt =
        GvisorRuntime.open(
            store,
            SandboxRuntime.Config.defaults().withRunsc(runsc()).withListener(events::add),
            () -> 0);
  }

  /** The runsc under test; null for the one on the PATH. */
  Path runsc() {
    return null;
  }

  @AfterAll
  void tearDown() throws IOException {
    List<Path> left = store != null ? mountsUnder(sandboxesDir()) : List.of();
    if (rt != null) {
      rt.close();
    }
    if (store != null) {
      store.close();
    }
    assertEquals(List.of(), left, "mounts left under the sandboxes' directories");
  }

  /** Output of a finished process. */
  record Done(int exit, String out, String err) {}

  private static Done finish(SandboxProcess p) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    Thread[] pumps = p.pipeTo(out, err);
    int exit = p.waitFor().code();
    for (Thread t : pumps) {
      t.join();
    }
    return new Done(
        exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  private Done run(SandboxOptions o, String... cmd) throws Exception {
    try (Sandbox sb = rt.run(ImageSpec.parse("tools:1"), o, List.of(cmd), false)) {
      return finish(sb.main().orElseThrow());
    }
  }

  private Path sandboxesDir() {
    return store.home().resolve("run/sandboxes");
  }

  /** The mounts at or below {@code dir}, as this process sees them. */
  private static List<Path> mountsUnder(Path dir) throws IOException {
    Path real = dir.toAbsolutePath().normalize();
    return MountTable.read().stream()
        .map(MountTable.MountEntry::mountpoint)
        .filter(m -> m.startsWith(real))
        .toList();
  }

  /**
   * Asserts that the source runsc gets for each read-only bind in a sandbox's spec is read-only on
   * the host already (not only in gVisor's view), and that there is at least one.
   */
  private void assertReadOnlyOnTheHost(Sandbox sb) throws IOException {
    var spec =
        new com.fasterxml.jackson.databind.ObjectMapper()
            .readTree(sandboxesDir().resolve(sb.id()).resolve("bundle/config.json").toFile());
    int n = 0;
    for (var m : spec.path("mounts")) {
      boolean ro = false;
      for (var opt : m.path("options")) {
        ro |= opt.asText().equals("ro");
      }
      if (m.path("type").asText().equals("bind") && ro) {
        Path source = Path.of(m.path("source").asText());
        // access(2) answers EROFS for a read-only mount, even to root (FileStore.isReadOnly
        // looks at the file system, which a bind shares with its writable source).
        assertFalse(Files.isWritable(source), m + ": the source is writable on the host");
        n++;
      }
    }
    assertTrue(n > 0, "no read-only bind in " + spec);
  }

  /** What a host file is: its bytes and its mode. */
  private record HostFile(byte[] bytes, String mode) {
    static HostFile of(Path f) throws IOException {
      return new HostFile(
          Files.readAllBytes(f), PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
    }

    void assertUnchanged(Path f) throws IOException {
      assertTrue(Files.exists(f), f + " is gone");
      assertArrayEquals(bytes, Files.readAllBytes(f), f + " changed");
      assertEquals(
          mode,
          PosixFilePermissions.toString(Files.getPosixFilePermissions(f)),
          f + ": mode changed");
    }
  }

  private static List<String> listing(Path dir) throws IOException {
    try (var s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  /**
   * A shell script that tries each of {@code writes} in a subshell and prints one line per try: its
   * text and its exit status.
   */
  private static String attempts(List<String> writes) {
    return writes.stream()
        .map(w -> "(" + w + ") 2>/dev/null; echo \"" + w + ": $?\"")
        .collect(Collectors.joining("; "));
  }

  /** Asserts that every try {@link #attempts} printed failed. */
  private static void assertAllFailed(List<String> writes, String out) {
    List<String> lines =
        out.lines().filter(l -> writes.stream().anyMatch(w -> l.startsWith(w + ": "))).toList();
    assertEquals(writes.size(), lines.size(), out);
    for (String l : lines) {
      assertFalse(l.endsWith(": 0"), "succeeded in the sandbox: " + l + "\n" + out);
    }
  }

  /** Every way of changing a file or directory that a read-only volume must refuse. */
  private static List<String> writesTo(String file, String dir) {
    List<String> w =
        new ArrayList<>(
            List.of(
                ": > " + file,
                "echo x > " + file,
                "chmod 777 " + file,
                "mv " + file + " " + file + ".moved",
                "rm " + file));
    if (dir != null) {
      w.add("touch " + dir + "/new");
      w.add("echo new > " + dir + "/new2");
    }
    return w;
  }

  @Test
  void stdoutAndStderrArriveSeparatelyInOrderWithoutLoss() throws Exception {
    Done d =
        run(
            SandboxOptions.defaults(),
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt 20000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done");
    assertEquals(0, d.exit());
    assertEquals(
        IntStream.range(0, 20000)
            .mapToObj(i -> "out" + i)
            .collect(Collectors.joining("\n", "", "\n")),
        d.out());
    assertEquals(
        IntStream.range(0, 20000)
            .mapToObj(i -> "err" + i)
            .collect(Collectors.joining("\n", "", "\n")),
        d.err());
  }

  @Test
  void exitCodesAndSignalsPropagate() throws Exception {
    assertEquals(3, run(SandboxOptions.defaults(), "/bin/sh", "-c", "exit 3").exit());
    assertEquals(0, run(SandboxOptions.defaults(), "/bin/true").exit());
    assertEquals(128 + 15, run(SandboxOptions.defaults(), "/bin/sh", "-c", "kill -TERM $$").exit());
    assertEquals(128 + 9, run(SandboxOptions.defaults(), "/bin/sh", "-c", "kill -KILL $$").exit());
  }

  @Test
  void environmentWorkdirAndUserComeFromOptions() throws Exception {
    SandboxOptions o =
        SandboxOptions.builder().env("GREETING=hello there").workdir("/tmp").user("app").build();
    Done d = run(o, "/bin/sh", "-c", "echo \"$GREETING\"; pwd; id -u; id -g; echo $PATH");
    assertEquals(
        "hello there\n/tmp\n1000\n1000\n" + ImageConfig.DEFAULT_PATH.substring(5) + "\n", d.out());
    assertEquals(
        "0\n0\n",
        run(SandboxOptions.builder().user("0:0").build(), "/bin/sh", "-c", "id -u; id -g").out());
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                rt.run(
                    ImageSpec.parse("tools:1"),
                    SandboxOptions.builder().user("nobody").build(),
                    List.of("/bin/true"),
                    false));
    assertTrue(e.getMessage().contains("no user 'nobody'"), e.getMessage());
  }

  @Test
  void writesGoToAnOverlayThatVanishesWithTheSandbox() throws Exception {
    Done d =
        run(
            SandboxOptions.defaults(),
            "/bin/sh",
            "-c",
            "echo new > /bin/added && cat /bin/added && rm /bin/cat && test -e /bin/cat; echo $?");
    assertEquals("new\n1\n", d.out(), d.err());
    Path scratch = Files.createDirectories(tmp.resolve("scratch"));
    d =
        run(
            SandboxOptions.builder().scratch(scratch).build(),
            "/bin/sh",
            "-c",
            "head -c 1000000 /bin/sh > /tmp/big && test -e /bin/added; echo $?; cat /bin/echo > /dev/null; echo $?");
    assertEquals("1\n0\n", d.out(), d.err());
    // The earlier sandboxes' writes are gone; the image is whole.
    d =
        run(
            SandboxOptions.defaults(),
            "/bin/sh",
            "-c",
            "test -e /bin/added; echo $?; test -e /tmp/big; echo $?; test -x /bin/cat; echo $?");
    assertEquals("1\n1\n0\n", d.out(), d.err());
  }

  @Test
  void volumesBindHostDirectoriesReadWriteOrReadOnly() throws Exception {
    Path rw = Files.createDirectories(tmp.resolve("vol-rw"));
    Path ro = Files.createDirectories(tmp.resolve("vol-ro"));
    Files.writeString(ro.resolve("input.txt"), "from the host\n");
    SandboxOptions o =
        SandboxOptions.builder()
            .volume(new SandboxOptions.Volume(rw, "/out", false))
            .volume(new SandboxOptions.Volume(ro, "/in", true))
            .build();
    Done d =
        run(
            o,
            "/bin/sh",
            "-c",
            "cat /in/input.txt; echo result > /out/r.txt; touch /in/nope 2>/dev/null; echo $?");
    assertEquals("from the host\n1\n", d.out(), d.err());
    assertEquals("result\n", Files.readString(rw.resolve("r.txt")));
    assertFalse(Files.exists(ro.resolve("nope")));
    assertThrows(IllegalArgumentException.class, () -> SandboxOptions.Volume.parse("/a:relative"));
    assertThrows(IllegalArgumentException.class, () -> SandboxOptions.Volume.parse("/a:/b:rx"));
  }

  @Test
  void readOnlyVolumesCannotBeChangedFromInsideTheSandbox() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("ro-guarded"));
    Path f = Files.writeString(dir.resolve("f"), "precious bytes\n");
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
    Path single = Files.writeString(tmp.resolve("ro-single"), "single file\n");
    Path rw = Files.createDirectories(tmp.resolve("rw-beside-ro"));
    HostFile fBefore = HostFile.of(f);
    HostFile singleBefore = HostFile.of(single);
    List<String> listingBefore = listing(dir);
    SandboxOptions o =
        SandboxOptions.builder()
            .volume(new SandboxOptions.Volume(dir, "/data", true))
            .volume(new SandboxOptions.Volume(single, "/one", true))
            .volume(new SandboxOptions.Volume(rw, "/out", false))
            .build();
    List<String> writes = new ArrayList<>(writesTo("/data/f", "/data"));
    writes.addAll(writesTo("/one", null));
    Done d;
    try (Sandbox sb =
        rt.run(
            ImageSpec.parse("tools:1"),
            o,
            List.of(
                "/bin/sh", "-c", attempts(writes) + "; echo written > /out/w; cat /data/f /one"),
            false)) {
      d = finish(sb.main().orElseThrow());
      assertReadOnlyOnTheHost(sb);
    }
    assertAllFailed(writes, d.out());
    assertTrue(d.out().endsWith("precious bytes\nsingle file\n"), d.toString());
    fBefore.assertUnchanged(f);
    singleBefore.assertUnchanged(single);
    assertEquals(listingBefore, listing(dir));
    assertEquals(
        "written\n",
        Files.readString(rw.resolve("w")),
        "a read-write volume beside them stays writable");
  }

  @Test
  void aReadOnlyVolumesSubmountsAreReadOnlyToo() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("ro-with-submount"));
    Path sub = Files.createDirectories(dir.resolve("sub"));
    sh("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", sub.toString());
    try {
      Path g = Files.writeString(sub.resolve("g"), "on a submount\n");
      HostFile before = HostFile.of(g);
      List<String> writes = writesTo("/data/sub/g", "/data/sub");
      Done d =
          run(
              SandboxOptions.builder()
                  .volume(new SandboxOptions.Volume(dir, "/data", true))
                  .build(),
              "/bin/sh",
              "-c",
              attempts(writes) + "; cat /data/sub/g");
      assertAllFailed(writes, d.out());
      assertTrue(d.out().endsWith("on a submount\n"), d.toString());
      before.assertUnchanged(g);
      assertEquals(List.of("g"), listing(sub));
      assertTrue(Files.isWritable(g), "the host's own mount stays writable");
    } finally {
      sh("umount", "-l", sub.toString());
    }
  }

  @Test
  void aWarmSandboxCannotChangeItsInitBinary() throws Exception {
    Path init = rt.initBinary();
    HostFile before = HostFile.of(init);
    List<String> writes = writesTo(InitBinary.PATH_IN_SANDBOX, null);
    try (Sandbox sb = rt.create(ImageSpec.parse("tools:1"), SandboxOptions.defaults())) {
      assertReadOnlyOnTheHost(sb);
      Done d = finish(sb.exec(List.of("/bin/sh", "-c", attempts(writes)), Sandbox.Exec.defaults()));
      assertAllFailed(writes, d.out());
    }
    before.assertUnchanged(init);
    assertArrayEquals(InitBinary.elf(), Files.readAllBytes(init));
  }

  @Test
  void aRestoredSandboxBindsTheOriginalReadOnlySourcesReadOnlyAgain() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("ro-snap"));
    Path f = Files.writeString(dir.resolve("f"), "precious bytes\n");
    HostFile before = HostFile.of(f);
    List<String> writes = writesTo("/data/f", "/data");
    SandboxOptions o =
        SandboxOptions.builder().volume(new SandboxOptions.Volume(dir, "/data", true)).build();
    try (Sandbox sb =
        rt.run(
            ImageSpec.parse("tools:1"),
            o,
            List.of(
                "/bin/sh",
                "-c",
                "echo skiff:ready; read line; " + attempts(writes) + "; cat /data/f"),
            true)) {
      var reader =
          new java.io.BufferedReader(
              new java.io.InputStreamReader(
                  sb.main().orElseThrow().stdout(), StandardCharsets.UTF_8));
      assertEquals("skiff:ready", reader.readLine());
      sb.checkpoint("ro-volume");
    }
    // The sandbox that took it is gone, and so is whatever it had bound: each restore binds again.
    try {
      for (int i = 0; i < 2; i++) {
        try (Sandbox sb =
            rt.restore(
                rt.snapshots().find(ImageSpec.parse("tools:1"), "ro-volume"),
                SandboxOptions.defaults(),
                true)) {
          SandboxProcess p = sb.main().orElseThrow();
          try (var in = p.stdin()) {
            in.write("go\n".getBytes(StandardCharsets.UTF_8));
          }
          Done d = finish(p);
          assertReadOnlyOnTheHost(sb);
          assertAllFailed(writes, d.out());
          assertTrue(d.out().endsWith("precious bytes\n"), d.toString());
        }
        before.assertUnchanged(f);
        assertEquals(List.of("f"), listing(dir));
      }
    } finally {
      rt.snapshots().remove(ImageSpec.parse("tools:1"), "ro-volume");
    }
    assertEquals(List.of(), mountsUnder(sandboxesDir()));
  }

  @Test
  void aDeadOwnersReadOnlyBindIsDetachedBeforeItsDirectoryIsRemoved() throws Exception {
    Path vol = Files.createDirectories(tmp.resolve("left-behind"));
    Path f = Files.writeString(vol.resolve("f"), "precious bytes\n");
    HostFile before = HostFile.of(f);
    String id = "sb-0000dead0001";
    Path dir = sandboxesDir().resolve(id);
    Path target = Files.createDirectories(dir.resolve("ro").resolve("0"));
    // What a killed owner leaves: its record (a pid whose start time no longer matches) and a bind.
    new SandboxRecord(
            id,
            ProcessHandle.current().pid(),
            "long ago",
            "tools:1",
            Instant.now().toString(),
            List.of("/bin/true"),
            "run")
        .write(dir);
    try {
      sh("mount", "--bind", vol.toString(), target.toString());
      sh("mount", "-o", "remount,bind,ro", target.toString());
      List<RuntimeEvent> cleaned = rt.sandboxes().reap();
      assertTrue(
          cleaned.stream()
              .anyMatch(e -> e instanceof RuntimeEvent.OrphanCleaned o && o.id().equals(id)),
          cleaned.toString());
      assertEquals(List.of(), mountsUnder(dir));
      assertFalse(Files.exists(dir));
      before.assertUnchanged(f);
      assertEquals(List.of("f"), listing(vol));
    } finally {
      if (!mountsUnder(dir).isEmpty()) {
        sh("umount", "-l", target.toString());
      }
    }
  }

  private static void sh(String... cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, p.waitFor(), String.join(" ", cmd) + ": " + out);
  }

  @Test
  void userNamesAreLookedUpInsideTheImageNeverThroughItsSymlinksOnTheHost() throws Exception {
    // A user line the host does not have, where only a symlink out of the image could reach it.
    Path hostPasswd =
        Files.writeString(tmp.resolve("host-passwd"), "intruder:x:4242:4343::/:/bin/sh\n");
    Path hostGroup = Files.writeString(tmp.resolve("host-group"), "intruders:x:4343:\n");
    Path root =
        new HostRootfs()
            .binaries("/bin/sh", "/bin/true", "/usr/bin/id")
            .build(tmp.resolve("rootfs-escape"));
    Path etc = root.resolve("etc");
    byte[] passwd = Files.readAllBytes(etc.resolve("passwd"));
    String up = "../".repeat(root.getNameCount() + 3);
    for (boolean absolute : List.of(true, false)) {
      Files.delete(etc.resolve("passwd"));
      Files.delete(etc.resolve("group"));
      Files.createSymbolicLink(
          etc.resolve("passwd"),
          absolute ? hostPasswd : Path.of(up + hostPasswd.toString().substring(1)));
      Files.createSymbolicLink(
          etc.resolve("group"),
          absolute ? hostGroup : Path.of(up + hostGroup.toString().substring(1)));
      String image = "escape:" + (absolute ? "absolute" : "relative");
      store.importImage(root.toString(), ImageRef.parse(image), ImportProgress.NONE);
      for (String where :
          List.of(image, root.toString())) { // an image, and a host directory as the root
        IllegalArgumentException e =
            assertThrows(
                IllegalArgumentException.class,
                () ->
                    rt.run(
                        ImageSpec.parse(where),
                        SandboxOptions.builder().user("intruder").build(),
                        List.of("/bin/true"),
                        false));
        assertTrue(e.getMessage().contains("no user 'intruder'"), e.getMessage());
        e =
            assertThrows(
                IllegalArgumentException.class,
                () ->
                    rt.run(
                        ImageSpec.parse(where),
                        SandboxOptions.builder().user("0:intruders").build(),
                        List.of("/bin/true"),
                        false));
        assertTrue(e.getMessage().contains("no group 'intruders'"), e.getMessage());
      }
    }
    // A symlink that stays inside the image is followed as usual.
    Files.createDirectories(root.resolve("usr/share/base"));
    Files.write(root.resolve("usr/share/base/passwd"), passwd);
    Files.delete(etc.resolve("passwd"));
    Files.createSymbolicLink(etc.resolve("passwd"), Path.of("../usr/share/base/passwd"));
    store.importImage(root.toString(), ImageRef.parse("escape:inside"), ImportProgress.NONE);
    try (Sandbox sb =
        rt.run(
            ImageSpec.parse("escape:inside"),
            SandboxOptions.builder().user("app").build(),
            List.of("/bin/sh", "-c", "id -u"),
            false)) {
      assertEquals(new Done(0, "1000\n", ""), finish(sb.main().orElseThrow()));
    }
  }

  @Test
  void aHostDirectoryServesAsTheRootUntouched() throws Exception {
    Path rootfs = tmp.resolve("rootfs");
    List<String> before;
    try (var s = Files.walk(rootfs)) {
      before = s.map(Path::toString).sorted().toList();
    }
    Path vol = Files.createDirectories(tmp.resolve("vol-dir"));
    try (Sandbox sb =
        rt.run(
            ImageSpec.parse(rootfs.toString()),
            SandboxOptions.builder().volume(new SandboxOptions.Volume(vol, "/data", false)).build(),
            List.of("/bin/sh", "-c", "echo hi > /data/x; echo written > /etc/new; cat /etc/new"),
            false)) {
      assertEquals(new Done(0, "written\n", ""), finish(sb.main().orElseThrow()));
      IOException e = assertThrows(IOException.class, () -> sb.checkpoint("x"));
      assertTrue(e.getMessage().contains("host directory"), e.getMessage());
    }
    assertEquals("hi\n", Files.readString(vol.resolve("x")));
    try (var s = Files.walk(rootfs)) {
      assertEquals(before, s.map(Path::toString).sorted().toList()); // no mount target, no write
    }
  }

  @Test
  void noNetworkUnlessAskedForThenTheHosts() throws Exception {
    try (java.net.ServerSocket server =
        new java.net.ServerSocket(0, 10, java.net.InetAddress.getLoopbackAddress())) {
      server.setSoTimeout(15_000);
      String connect =
          "echo hello > /dev/tcp/127.0.0.1/" + server.getLocalPort() + " && echo connected";
      Done none = run(SandboxOptions.defaults(), "/bin/bash", "-c", connect);
      assertTrue(none.exit() != 0 && none.out().isEmpty(), none.toString());
      var accepted =
          java.util.concurrent.CompletableFuture.supplyAsync(
              () -> {
                try (java.net.Socket s = server.accept()) {
                  return new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                } catch (IOException e) {
                  return "accept failed: " + e;
                }
              });
      Done host = run(SandboxOptions.builder().network(true).build(), "/bin/bash", "-c", connect);
      assertEquals(new Done(0, "connected\n", ""), host);
      assertEquals("hello\n", accepted.get(20, java.util.concurrent.TimeUnit.SECONDS));
    }
  }

  @Test
  void stdinReachesTheProcessWhenAskedFor() throws Exception {
    try (Sandbox sb =
        rt.run(ImageSpec.parse("tools:1"), SandboxOptions.defaults(), List.of("/bin/cat"), true)) {
      SandboxProcess p = sb.main().orElseThrow();
      try (var in = p.stdin()) {
        in.write("line one\nline two\n".getBytes(StandardCharsets.UTF_8));
      }
      assertEquals(new Done(0, "line one\nline two\n", ""), finish(p));
    }
    // Without stdin the process reads end-of-file at once rather than waiting.
    assertEquals("", run(SandboxOptions.defaults(), "/bin/cat").out());
  }

  @Test
  void aTimeoutKillsTheSandbox() throws Exception {
    long t0 = System.nanoTime();
    try (Sandbox sb =
        rt.run(
            ImageSpec.parse("tools:1"),
            SandboxOptions.builder().timeout(Duration.ofMillis(1500)).build(),
            List.of("/bin/sleep", "60"),
            false)) {
      int exit = sb.main().orElseThrow().waitFor().code();
      assertTrue(sb.timedOut());
      assertEquals(128 + 9, exit);
    }
    assertTrue(System.nanoTime() - t0 < 30e9, "took " + (System.nanoTime() - t0) / 1e9 + " s");
  }

  @Test
  void closingLeavesNoSandboxOrStateBehindAndTheMountStaysWarm() throws Exception {
    Sandbox sb =
        rt.run(
            ImageSpec.parse("tools:1"),
            SandboxOptions.defaults(),
            List.of("/bin/sleep", "60"),
            false);
    Path dir = sandboxesDir().resolve(sb.id());
    assertTrue(Files.isDirectory(dir));
    assertTrue(MountTable.fuseMountAt(sb.rootfs()) != null);
    assertEquals(
        1, rt.sandboxes().list().stream().filter(i -> i.record().id().equals(sb.id())).count());
    sb.close();
    assertFalse(Files.exists(dir));
    assertTrue(rt.sandboxes().list().stream().noneMatch(i -> i.record().id().equals(sb.id())));
    // runsc's own delete runs in the background (it waits seconds for the gofer): it finishes.
    Runsc.Result state = Runsc.run(rt.runsc().plain("state", sb.id()), Duration.ofSeconds(10));
    for (int i = 0; i < 100 && state.exit() == 0; i++) {
      Thread.sleep(100);
      state = Runsc.run(rt.runsc().plain("state", sb.id()), Duration.ofSeconds(10));
    }
    assertTrue(state.exit() != 0, state.output());
    // The image stays mounted for the runtime's next sandbox, which runs on the same mount.
    assertTrue(MountTable.fuseMountAt(sb.rootfs()) != null);
    try (Sandbox next =
        rt.run(
            ImageSpec.parse("tools:1"), SandboxOptions.defaults(), List.of("/bin/true"), false)) {
      assertEquals(sb.rootfs(), next.rootfs());
      assertEquals(0, next.main().orElseThrow().waitFor().code());
    }
    // With volumes there is more to undo: the overlay root and a read-only bind per read-only
    // volume.
    Path ro = Files.createDirectories(tmp.resolve("vol-closing"));
    Sandbox withVolume =
        rt.run(
            ImageSpec.parse("tools:1"),
            SandboxOptions.builder().volume(new SandboxOptions.Volume(ro, "/in", true)).build(),
            List.of("/bin/sleep", "60"),
            false);
    Path volumeDir = sandboxesDir().resolve(withVolume.id());
    withVolume.close();
    assertEquals(List.of(), mountsUnder(volumeDir), "no overlay, no read-only bind left");
    assertFalse(Files.exists(volumeDir));
  }

  @Test
  void aSharingRuntimeLendsItsMountsAndUnmountsThemWhenClosed() throws Exception {
    Path root;
    // A home of its own, so that the class's runtime's mount is not the one found.
    try (ImageStore home = ImageStore.open(tmp.resolve("home-own"))) {
      home.importImage(
          tmp.resolve("rootfs").toString(), ImageRef.parse("tools:1"), ImportProgress.NONE);
    }
    try (ImageStore store = ImageStore.open(tmp.resolve("home-own"));
        SandboxRuntime own =
            SandboxRuntime.open(
                store, SandboxRuntime.Config.defaults().withRunsc(runsc()).withSharedMounts(true));
        Sandbox sb =
            own.run(
                ImageSpec.parse("tools:1"),
                SandboxOptions.defaults(),
                List.of("/bin/true"),
                false)) {
      root = sb.rootfs();
      assertEquals(0, sb.main().orElseThrow().waitFor().code());
      // A second runtime of the same home (another process, say) finds the mount and runs on it.
      try (SandboxRuntime other =
              SandboxRuntime.open(store, SandboxRuntime.Config.defaults().withRunsc(runsc()));
          Sandbox sb2 =
              other.run(
                  ImageSpec.parse("tools:1"),
                  SandboxOptions.defaults(),
                  List.of("/bin/true"),
                  false)) {
        assertEquals(root, sb2.rootfs());
      }
      assertTrue(MountTable.fuseMountAt(root) != null);
    }
    assertEquals(null, MountTable.fuseMountAt(root));
    assertFalse(Files.exists(root));
  }

  @Test
  void aWarmSandboxRunsOneExecAfterAnother() throws Exception {
    try (Sandbox sb =
        rt.create(
            ImageSpec.parse("tools:1"), SandboxOptions.builder().env("FROM_OPTIONS=1").build())) {
      assertEquals(
          new Done(0, "first\n", ""),
          finish(
              sb.exec(
                  List.of("/bin/sh", "-c", "echo first > /tmp/state; cat /tmp/state"),
                  Sandbox.Exec.defaults())));
      // State in the sandbox's overlay survives between execs; options and per-exec env apply.
      assertEquals(
          new Done(0, "first 1 2\n", ""),
          finish(
              sb.exec(
                  List.of("/bin/sh", "-c", "echo $(cat /tmp/state) $FROM_OPTIONS $PER_EXEC"),
                  Sandbox.Exec.defaults().withEnv("PER_EXEC=2"))));
      // Two at once, each with its own output.
      SandboxProcess a =
          sb.exec(List.of("/bin/sh", "-c", "sleep 0.5; echo a"), Sandbox.Exec.defaults());
      SandboxProcess b =
          sb.exec(List.of("/bin/sh", "-c", "echo b; exit 7"), Sandbox.Exec.defaults());
      assertEquals(new Done(7, "b\n", ""), finish(b));
      assertEquals(new Done(0, "a\n", ""), finish(a));
      Done missing = finish(sb.exec(List.of("/no/such/binary"), Sandbox.Exec.defaults()));
      assertTrue(missing.exit() != 0);
      assertEquals(
          new Done(0, "still here\n", ""),
          finish(sb.exec(List.of("/bin/echo", "still here"), Sandbox.Exec.defaults())));
    }
  }

  @Test
  void aSnapshotRestoresAsManyFreshSandboxes() throws Exception {
    Snapshot snap;
    try (Sandbox sb =
        rt.run(
            ImageSpec.parse("tools:1"),
            SandboxOptions.defaults(),
            List.of(
                "/bin/sh",
                "-c",
                "x=computed-$(seq 3 3); echo skiff:ready; read line; echo \"got $line after $x\""),
            true)) {
      SandboxProcess p = sb.main().orElseThrow();
      var reader =
          new java.io.BufferedReader(
              new java.io.InputStreamReader(p.stdout(), StandardCharsets.UTF_8));
      assertEquals("skiff:ready", reader.readLine());
      snap = sb.checkpoint("ready");
    }
    assertTrue(snap.bytes() > 0);
    assertEquals(
        List.of("ready"),
        rt.snapshots().list(ImageSpec.parse("tools:1")).stream().map(Snapshot::name).toList());
    for (String input : List.of("one", "two", "three")) {
      try (Sandbox sb =
          rt.restore(
              rt.snapshots().find(ImageSpec.parse("tools:1"), "ready"),
              SandboxOptions.defaults(),
              true)) {
        SandboxProcess p = sb.main().orElseThrow();
        try (var in = p.stdin()) {
          in.write((input + "\n").getBytes(StandardCharsets.UTF_8));
        }
        assertEquals(new Done(0, "got " + input + " after computed-3\n", ""), finish(p));
      }
    }
    IOException e =
        assertThrows(
            IOException.class, () -> rt.snapshots().find(ImageSpec.parse("tools:1"), "nope"));
    assertTrue(e.getMessage().contains("no snapshot 'nope'"), e.getMessage());
    rt.snapshots().remove(ImageSpec.parse("tools:1"), "ready");
    assertTrue(rt.snapshots().list(ImageSpec.parse("tools:1")).isEmpty());
  }

  @Test
  void aSnapshotRestoresWithTheVolumesItWasTakenWith() throws Exception {
    Path vol = Files.createDirectories(tmp.resolve("vol-snap"));
    SandboxOptions o =
        SandboxOptions.builder().volume(new SandboxOptions.Volume(vol, "/data", false)).build();
    try (Sandbox sb =
        rt.run(
            ImageSpec.parse("tools:1"),
            o,
            List.of(
                "/bin/sh",
                "-c",
                "echo skiff:ready; read line; echo \"$line\" > /data/out; cat /data/out"),
            true)) {
      var reader =
          new java.io.BufferedReader(
              new java.io.InputStreamReader(
                  sb.main().orElseThrow().stdout(), StandardCharsets.UTF_8));
      assertEquals("skiff:ready", reader.readLine());
      sb.checkpoint("with-volume");
    }
    // Restored with default options: the snapshot's own binds come back.
    try (Sandbox sb =
        rt.restore(
            rt.snapshots().find(ImageSpec.parse("tools:1"), "with-volume"),
            SandboxOptions.defaults(),
            true)) {
      SandboxProcess p = sb.main().orElseThrow();
      try (var in = p.stdin()) {
        in.write("restored\n".getBytes(StandardCharsets.UTF_8));
      }
      assertEquals(new Done(0, "restored\n", ""), finish(p));
    }
    assertEquals("restored\n", Files.readString(vol.resolve("out")));
    // A volume given at restore points the snapshot's bind at /data to another host path.
    Path elsewhere = Files.createDirectories(tmp.resolve("vol-elsewhere"));
    try (Sandbox sb =
        rt.restore(
            rt.snapshots().find(ImageSpec.parse("tools:1"), "with-volume"),
            SandboxOptions.builder()
                .volume(new SandboxOptions.Volume(elsewhere, "/data", false))
                .build(),
            true)) {
      SandboxProcess p = sb.main().orElseThrow();
      try (var in = p.stdin()) {
        in.write("moved\n".getBytes(StandardCharsets.UTF_8));
      }
      assertEquals(new Done(0, "moved\n", ""), finish(p));
    }
    assertEquals("moved\n", Files.readString(elsewhere.resolve("out")));
    assertEquals("restored\n", Files.readString(vol.resolve("out")));
    // A restored process cannot gain a mount it did not have.
    IOException added =
        assertThrows(
            IOException.class,
            () ->
                rt.restore(
                    rt.snapshots().find(ImageSpec.parse("tools:1"), "with-volume"),
                    SandboxOptions.builder()
                        .volume(new SandboxOptions.Volume(elsewhere, "/other", false))
                        .build(),
                    true));
    assertTrue(added.getMessage().contains("no volume at /other"), added.getMessage());
    rt.snapshots().remove(ImageSpec.parse("tools:1"), "with-volume");
    // gVisor cannot checkpoint a sandbox on the host's network; the error says so.
    try (Sandbox sb =
        rt.run(
            ImageSpec.parse("tools:1"),
            SandboxOptions.builder().network(true).build(),
            List.of("/bin/sleep", "30"),
            false)) {
      IOException e = assertThrows(IOException.class, () -> sb.checkpoint("networked"));
      assertTrue(e.getMessage().contains("hostinet"), e.getMessage());
    }
    assertTrue(rt.snapshots().list(ImageSpec.parse("tools:1")).isEmpty());
  }

  @Test
  void limitsAreAppliedThroughCgroupsOrReportedAsNotEnforced() throws Exception {
    events.clear();
    try (Sandbox sb =
        rt.run(
            ImageSpec.parse("tools:1"),
            SandboxOptions.builder().memory(256L << 20).cpus(0.5).build(),
            List.of("/bin/sleep", "30"),
            false)) {
      Cgroups cg = rt.cgroups();
      if (cg.memory()) {
        Path v1 = Path.of("/sys/fs/cgroup/memory/skiff", sb.id(), "memory.limit_in_bytes");
        Path v2 = Path.of("/sys/fs/cgroup/skiff", sb.id(), "memory.max");
        for (int i = 0; i < 100 && !Files.exists(v1) && !Files.exists(v2); i++) {
          Thread.sleep(100); // runsc run makes the cgroup as the sandbox starts
        }
        String got = Files.exists(v1) ? Files.readString(v1) : Files.readString(v2);
        assertEquals(Long.toString(256L << 20), got.strip());
      } else {
        assertTrue(
            events.stream()
                .anyMatch(
                    e ->
                        e instanceof RuntimeEvent.LimitNotEnforced l && l.limit().equals("memory")),
            events.toString());
      }
    }
  }

  @Test
  void badInputFailsClearlyAndLeavesNothing() throws Exception {
    long before = Files.list(sandboxesDir()).count();
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                rt.run(
                    ImageSpec.parse("nope:1"),
                    SandboxOptions.defaults(),
                    List.of("/bin/true"),
                    false));
    assertTrue(e.getMessage().contains("no image nope:1"), e.getMessage());
    IllegalArgumentException noCmd =
        assertThrows(
            IllegalArgumentException.class,
            () -> rt.run(ImageSpec.parse("tools:1"), SandboxOptions.defaults(), List.of(), false));
    assertTrue(noCmd.getMessage().contains("no command"), noCmd.getMessage());
    assertEquals(127, run(SandboxOptions.defaults(), "/bin/sh", "-c", "/no/such/thing").exit());
    assertEquals(before, Files.list(sandboxesDir()).count());
  }
}
