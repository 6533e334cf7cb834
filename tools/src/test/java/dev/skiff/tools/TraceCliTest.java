package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.Tars;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** mount --record, trace show, and replay on the next mount, as a user runs them. */
@Tag("fuse")
class TraceCliTest {
  @TempDir Path tmp;

  @Test
  void recordShowAndReplay() throws Exception {
    Environment.requireFuse();
    byte[] big = new byte[(2 << 20) + 3];
    new SplittableRandom(4).nextBytes(big);
    byte[] lib = new byte[20_000];
    new SplittableRandom(5).nextBytes(lib);
    Path tar =
        new Tars()
            .file("app/lib.bin", lib, 0644)
            .file("app/big.bin", big, 0644)
            .file("app/unused.bin", lib.clone(), 0644)
            .write(tmp.resolve("app.tar"));
    String home = tmp.resolve("home").toString();
    Cli.run(0, "import", "-q", "--store", home, tar.toString(), "app:1");

    Path mp = tmp.resolve("mnt");
    MountProcess rec = new MountProcess(mp, Map.of(), "--store", home, "--record", "app:1");
    assertFalse(rec.output().contains("prefetching"), "no trace yet");
    assertArrayEquals(lib, Files.readAllBytes(mp.resolve("app/lib.bin")));
    assertArrayEquals(big, Files.readAllBytes(mp.resolve("app/big.bin")));
    assertEquals(0, SkiffCli.execute("umount", mp.toString()));
    assertTrue(rec.process.waitFor(30, TimeUnit.SECONDS));
    assertTrue(rec.output().contains("recorded 4 chunks"), rec.output());

    String shown = Cli.run(0, "trace", "show", "--store", home, "app:1");
    assertTrue(shown.contains("1 recordings, 4 chunks"), shown);
    int libAt = shown.indexOf("/app/lib.bin");
    int bigAt = shown.indexOf("/app/big.bin");
    assertTrue(libAt > 0 && bigAt > libAt, "files in order of first access:\n" + shown);
    assertFalse(shown.contains("unused"), shown);

    MountProcess replay = new MountProcess(mp, Map.of(), "--store", home, "--record", "app:1");
    assertTrue(replay.output().contains("prefetching 4 traced chunks"), replay.output());
    replay.awaitOutput("prefetched 4 traced chunks"); // so this recording sees prefetch hits
    assertArrayEquals(lib, Files.readAllBytes(mp.resolve("app/lib.bin")));
    assertArrayEquals(big, Files.readAllBytes(mp.resolve("app/big.bin")));
    assertEquals(0, SkiffCli.execute("umount", mp.toString()));
    assertTrue(replay.process.waitFor(30, TimeUnit.SECONDS));
    assertTrue(replay.output().contains("2 recordings"), replay.output());

    Path page = tmp.resolve("start.html");
    shown = Cli.run(0, "trace", "show", "--store", home, "--html", page.toString(), "app:1");
    String html = Files.readString(page);
    assertTrue(
        html.contains("<svg") && html.contains("/app/big.bin") && html.contains("/app/lib.bin"),
        html);
    assertTrue(
        html.contains("prefetch hits): 4 of 8"),
        "the second start found every chunk prefetched:\n" + html);

    MountProcess plain = new MountProcess(mp, Map.of(), "--store", home, "--no-prefetch", "app:1");
    assertFalse(plain.output().contains("prefetching"), plain.output());
    assertEquals(0, SkiffCli.execute("umount", mp.toString()));
    assertTrue(plain.process.waitFor(30, TimeUnit.SECONDS));

    assertEquals(1, SkiffCli.execute("trace", "show", "--store", home, "nothing:1"));

    String optimized = Cli.run(0, "optimize", "--store", home, "app:1");
    assertTrue(optimized.contains("repacked 4 traced chunks"), optimized);
    MountProcess after = new MountProcess(mp, Map.of(), "--store", home, "app:1");
    assertTrue(
        after.output().contains("prefetching 4 traced chunks"),
        "the trace follows the optimized image");
    assertArrayEquals(big, Files.readAllBytes(mp.resolve("app/big.bin")));
    assertArrayEquals(lib, Files.readAllBytes(mp.resolve("app/unused.bin")));
    assertEquals(0, SkiffCli.execute("umount", mp.toString()));
    assertTrue(after.process.waitFor(30, TimeUnit.SECONDS));
  }
}
