package dev.skiff.runtime.build;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.runtime.Sandbox;
import dev.skiff.runtime.SandboxOptions;
import dev.skiff.runtime.SandboxRuntime;
import dev.skiff.runtime.testing.HostRootfs;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Builds from a Dockerfile for real: RUN steps in gVisor sandboxes whose writes (new, changed and
 * deleted files) become the image, COPY from the context, the config instructions; a rebuild with
 * nothing changed runs nothing, a changed step reruns from there on, --force-build runs all, and a
 * failing step tags nothing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(300)
class ImageBuilderTest {
  @TempDir static Path tmp;
  ImageStore store;
  SandboxRuntime rt;
  Path context;
  final List<String> log = new CopyOnWriteArrayList<>();

  @BeforeAll
  void setUp() throws Exception {
    Environment.requireRunsc();
    store = ImageStore.open(tmp.resolve("home"));
    Path rootfs =
        HostRootfs.tools()
            .binaries("/usr/bin/stat", "/bin/mkdir", "/bin/ln")
            .build(tmp.resolve("rootfs"));
    store.importImage(rootfs.toString(), ImageRef.parse("tools:1"), ImportProgress.NONE);
    rt = SandboxRuntime.open(store, SandboxRuntime.Config.defaults());
    context = Files.createDirectories(tmp.resolve("context"));
    Files.createDirectories(context.resolve("data/sub"));
    Files.writeString(context.resolve("data/a.txt"), "from the context\n");
    Files.writeString(context.resolve("data/sub/b.txt"), "deeper\n");
    Files.writeString(context.resolve("run.sh"), "#!/bin/sh\necho script\n");
    context.resolve("run.sh").toFile().setExecutable(true);
  }

  @AfterAll
  void tearDown() throws Exception {
    if (rt != null) {
      rt.close();
    }
    if (store != null) {
      store.close();
    }
  }

  static final String DOCKERFILE =
      """
      # a comment
      FROM tools:1
      ARG GREETING=hello
      ENV APP=/app \\
          MODE=test
      WORKDIR /app
      COPY data/ /app/data/
      COPY run.sh .
      RUN echo "$GREETING from run in $PWD as $MODE" > out.txt && rm /bin/false && mkdir -p /etc/made \\
          && rm -r /app/data/sub && mkdir /app/data/sub && echo new > /app/data/sub/c.txt
      LABEL team=skiff
      EXPOSE 8080 9090/udp
      VOLUME /data /logs
      USER 1000
      CMD ["cat", "/app/out.txt"]
      """;

  private String run(ImageRef image, String... cmd) throws Exception {
    try (Sandbox sb =
        rt.run(ImageSpec.parse(image.toString()), SandboxOptions.defaults(), List.of(cmd), false)) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      ByteArrayOutputStream err = new ByteArrayOutputStream();
      var p = sb.main().orElseThrow();
      Thread[] pumps = p.pipeTo(out, err);
      p.waitFor();
      for (Thread t : pumps) {
        t.join();
      }
      return out.toString(StandardCharsets.UTF_8) + err.toString(StandardCharsets.UTF_8);
    }
  }

  private String config(ImageRef ref) throws Exception {
    try (ImageIndex index = store.openIndex(store.resolve(ref).orElseThrow())) {
      return index.meta("config");
    }
  }

  @Test
  void buildsRebuildsFromTheCacheAndRerunsWhatChanged() throws Exception {
    ImageBuilder b = new ImageBuilder(store, rt, log::add);
    ImageRef app = ImageRef.parse("app:1");
    ImageBuilder.Result first = b.build(DOCKERFILE, context, app, Map.of(), false);
    assertEquals(3, first.steps());
    assertEquals(0, first.cached());
    // The image's own command, user, environment and working directory.
    assertEquals("hello from run in /app as test\n", run(app));
    String config = config(app);
    assertTrue(config.contains("\"User\":\"1000\""), config);
    assertTrue(config.contains("\"WorkingDir\":\"/app\""), config);
    assertTrue(config.contains("\"APP=/app\""), config);
    assertTrue(config.contains("\"team\":\"skiff\""), config);
    assertTrue(config.contains("\"ExposedPorts\":{\"8080/tcp\":{},\"9090/udp\":{}}"), config);
    assertTrue(config.contains("\"Volumes\":{\"/data\":{},\"/logs\":{}}"), config);
    assertEquals(
        "from the context\n#!/bin/sh\necho script\n",
        run(app, "cat", "/app/data/a.txt", "/app/run.sh"));
    assertEquals(
        "0 0 744\n",
        run(app, "stat", "-c", "%u %g %a", "/app/run.sh"),
        "copied as root, its mode kept");
    assertTrue(run(app, "ls", "/bin").lines().noneMatch(l -> l.equals("false")), "deleted in RUN");
    assertEquals("directory\n", run(app, "stat", "-c", "%F", "/etc/made"));
    // A directory replaced in RUN holds only what the step put there (an opaque directory).
    assertEquals("c.txt\n", run(app, "ls", "/app/data/sub"));
    List<String> base = dev.skiff.casfs.testing.Trees.ofImage(store, ImageRef.parse("tools:1"));
    List<String> built = dev.skiff.casfs.testing.Trees.ofImage(store, app);
    assertEquals(
        List.of(),
        built.stream()
            .filter(l -> l.contains("trusted.overlay") || l.matches("(proc|sys|dev|tmp) .*"))
            .filter(l -> !base.contains(l))
            .toList(),
        "overlayfs's bookkeeping and the sandbox's mount points are not the image's");
    assertTrue(run(app, "ls", "/").lines().noneMatch(l -> l.equals("proc") && false));

    // Nothing changed: every step from the cache.
    ImageBuilder.Result again =
        b.build(DOCKERFILE, context, ImageRef.parse("app:2"), Map.of(), false);
    assertEquals(3, again.cached());
    assertEquals(first.index(), again.index(), "the same image");

    // A build argument changes the RUN step only: the COPYs before it come from the cache.
    ImageBuilder.Result arg =
        b.build(DOCKERFILE, context, ImageRef.parse("app:3"), Map.of("GREETING", "hi"), false);
    assertEquals(2, arg.cached());
    assertEquals("hi from run in /app as test\n", run(ImageRef.parse("app:3")));

    // A changed input file reruns its COPY and what follows.
    Files.writeString(context.resolve("run.sh"), "#!/bin/sh\necho changed\n");
    ImageBuilder.Result changed =
        b.build(DOCKERFILE, context, ImageRef.parse("app:4"), Map.of(), false);
    assertEquals(1, changed.cached());

    ImageBuilder.Result forced =
        b.build(DOCKERFILE, context, ImageRef.parse("app:5"), Map.of(), true);
    assertEquals(0, forced.cached());
  }

  @Test
  void aBuiltImageIsWhatTheSameStepsMakeInAPlainChroot() throws Exception {
    String steps =
        "echo a > /a && rm /bin/false && mkdir /d && echo b > /d/b && chmod 600 /d/b"
            + " && ln -s /a /l && mkdir -m 1777 /shared";
    new ImageBuilder(store, rt, log::add)
        .build(
            "FROM tools:1\nRUN " + steps + "\n",
            context,
            ImageRef.parse("faithful:1"),
            Map.of(),
            false);
    // The same step in a plain chroot of the base's tree.
    Path chroot = tmp.resolve("chroot");
    dev.skiff.casfs.testing.DockerRegistry.run(
        List.of("cp", "-a", tmp.resolve("rootfs").toString(), chroot.toString()));
    dev.skiff.casfs.testing.DockerRegistry.run(
        List.of("chroot", chroot.toString(), "/bin/sh", "-c", steps));
    // Times differ (the two ran at different moments); everything else must not.
    java.util.function.UnaryOperator<List<String>> timeless =
        l -> l.stream().map(x -> x.replaceAll(" mtime=\\d+", "")).toList();
    assertEquals(
        timeless.apply(dev.skiff.casfs.testing.Trees.ofDirectory(chroot)),
        timeless.apply(dev.skiff.casfs.testing.Trees.ofImage(store, ImageRef.parse("faithful:1"))));
  }

  @Test
  void addUnpacksLocalArchivesAndFetchesUrls() throws Exception {
    Path ctx = Files.createDirectories(tmp.resolve("add-context"));
    org.apache.commons.compress.archivers.tar.TarArchiveEntry owned =
        new org.apache.commons.compress.archivers.tar.TarArchiveEntry("pkg/owned.txt");
    owned.setIds(1000, 1001);
    owned.setMode(0640);
    byte[] ownedBytes = "owned by 1000\n".getBytes(StandardCharsets.UTF_8);
    owned.setSize(ownedBytes.length);
    new dev.skiff.casfs.testing.Tars()
        .dir("pkg", 0755)
        .file("pkg/a.txt", "from the archive\n")
        .entry(owned, ownedBytes)
        .symlink("pkg/link", "a.txt")
        .hardlink("pkg/hard", "pkg/a.txt")
        .writeGzip(ctx.resolve("pkg.tar.gz"));
    // The same tree as bzip2, xz and plain: told by content, not by name.
    dev.skiff.casfs.testing.DockerRegistry.run(
        List.of(
            "sh",
            "-c",
            "cd "
                + ctx
                + " && mkdir x && echo xz > x/x.txt && tar -cJf x.tar.xz x"
                + " && mkdir b && echo bz > b/b.txt && tar -cjf b.archive b"
                + " && mkdir p && echo plain > p/p.txt && tar -cf p.tar p"
                + " && rm -r x b p && echo not a tar | gzip > notes.gz"));
    // A URL on a server of the test's own.
    com.sun.net.httpserver.HttpServer http =
        com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress("127.0.0.1", 0), 0);
    java.util.concurrent.atomic.AtomicReference<String> served =
        new java.util.concurrent.atomic.AtomicReference<>("fetched v1\n");
    http.createContext(
        "/files/",
        ex -> {
          byte[] body =
              ex.getRequestURI().getPath().endsWith("/hello.txt")
                  ? served.get().getBytes(StandardCharsets.UTF_8)
                  : null;
          ex.sendResponseHeaders(body == null ? 404 : 200, body == null ? -1 : body.length);
          if (body != null) {
            ex.getResponseBody().write(body);
          }
          ex.close();
        });
    http.start();
    try {
      String base = "http://127.0.0.1:" + http.getAddress().getPort() + "/files/";
      String steps =
          "FROM tools:1\n"
              + "ADD pkg.tar.gz x.tar.xz b.archive p.tar notes.gz /opt/\n"
              + "ADD "
              + base
              + "hello.txt /srv/\n";
      ImageBuilder b = new ImageBuilder(store, rt, log::add);
      ImageRef added = ImageRef.parse("added:1");
      assertEquals(0, b.build(steps, ctx, added, Map.of(), false).cached());
      assertEquals(
          "from the archive\nfrom the archive\nfrom the archive\nxz\nbz\nplain\n",
          run(
              added,
              "cat",
              "/opt/pkg/a.txt",
              "/opt/pkg/link",
              "/opt/pkg/hard",
              "/opt/x/x.txt",
              "/opt/b/b.txt",
              "/opt/p/p.txt"));
      assertEquals(
          "1000 1001 640\n0 0 644\n",
          run(added, "stat", "-c", "%u %g %a", "/opt/pkg/owned.txt", "/opt/pkg/a.txt"),
          "owners and modes as the archive says");
      assertEquals("2\n", run(added, "stat", "-c", "%h", "/opt/pkg/hard"), "a hard link");
      assertTrue(run(added, "ls", "/opt").contains("notes.gz"), "not a tar: copied as it is");
      assertEquals("fetched v1\n", run(added, "cat", "/srv/hello.txt"));
      assertEquals("0 600\n", run(added, "stat", "-c", "%u %a", "/srv/hello.txt"));

      // The URL's content keys the step: the same content is cached, a new one fetched again.
      assertEquals(2, b.build(steps, ctx, added, Map.of(), false).cached());
      served.set("fetched v2\n");
      assertEquals(1, b.build(steps, ctx, added, Map.of(), false).cached());
      assertEquals("fetched v2\n", run(added, "cat", "/srv/hello.txt"));

      ImageBuilder.BuildException missing =
          assertThrows(
              ImageBuilder.BuildException.class,
              () ->
                  b.build(
                      "FROM tools:1\nADD " + base + "gone.txt /srv/\n",
                      ctx,
                      ImageRef.parse("b:4"),
                      Map.of(),
                      false));
      assertTrue(missing.getMessage().contains("HTTP 404"), missing.getMessage());
    } finally {
      http.stop(0);
    }

    // Archives that would write outside the destination are refused, and write nothing there.
    new dev.skiff.casfs.testing.Tars()
        .file("../escape.txt", "out\n")
        .writeGzip(ctx.resolve("climb.tar.gz"));
    new dev.skiff.casfs.testing.Tars()
        .symlink("l", "/tmp")
        .file("l/through.txt", "through\n")
        .write(ctx.resolve("through.tar"));
    // A directory written, then made a link to the host's /etc: the owners set after would land
    // on the host's files.
    new dev.skiff.casfs.testing.Tars()
        .dir("d", 0755)
        .file("d/passwd", "x\n")
        .symlink("d", "/etc")
        .write(ctx.resolve("swap.tar"));
    // A link from an archive, then a directory of the context copied through it.
    new dev.skiff.casfs.testing.Tars().symlink("x", "/tmp").write(ctx.resolve("linkx.tar"));
    Files.createDirectories(ctx.resolve("ctxdir/x"));
    Files.writeString(ctx.resolve("ctxdir/x/copied-through.txt"), "through\n");
    for (String bad : List.of("climb.tar.gz", "through.tar", "swap.tar", "linkx.tar ctxdir")) {
      ImageBuilder.BuildException e =
          assertThrows(
              ImageBuilder.BuildException.class,
              () ->
                  new ImageBuilder(store, rt, log::add)
                      .build(
                          "FROM tools:1\nADD " + bad + " /opt/\n",
                          ctx,
                          ImageRef.parse("bad:1"),
                          Map.of(),
                          false));
      assertTrue(
          e.getMessage().contains("climbs out")
              || e.getMessage().contains("goes through the link")
              || e.getMessage().contains("would replace a directory"),
          e.getMessage());
    }
    assertFalse(Files.exists(Path.of("/tmp/through.txt")));
    assertFalse(Files.exists(Path.of("/tmp/copied-through.txt")));
    assertFalse(store.resolve(ImageRef.parse("bad:1")).isPresent());
  }

  @Test
  void aFailingStepSaysWhereAndTagsNothing() throws Exception {
    ImageBuilder b = new ImageBuilder(store, rt, log::add);
    ImageBuilder.BuildException e =
        assertThrows(
            ImageBuilder.BuildException.class,
            () ->
                b.build(
                    "FROM tools:1\nRUN echo about to fail && false\n",
                    context,
                    ImageRef.parse("broken:1"),
                    Map.of(),
                    false));
    assertTrue(
        e.getMessage().startsWith("line 2 (RUN): RUN echo about to fail && false failed (exit"),
        e.getMessage());
    assertFalse(store.resolve(ImageRef.parse("broken:1")).isPresent());
    assertTrue(log.stream().anyMatch(l -> l.equals("  | about to fail")), log.toString());
    ImageBuilder.BuildException outside =
        assertThrows(
            ImageBuilder.BuildException.class,
            () ->
                b.build(
                    "FROM tools:1\nCOPY ../x /x\n",
                    context,
                    ImageRef.parse("b:2"),
                    Map.of(),
                    false));
    assertTrue(outside.getMessage().contains("outside the build context"), outside.getMessage());
    ImageBuilder.BuildException unknown =
        assertThrows(
            ImageBuilder.BuildException.class,
            () ->
                b.build(
                    "FROM tools:1\nHEALTHCHECK CMD true\n",
                    context,
                    ImageRef.parse("b:3"),
                    Map.of(),
                    false));
    assertTrue(unknown.getMessage().contains("HEALTHCHECK is not supported"), unknown.getMessage());
  }
}
