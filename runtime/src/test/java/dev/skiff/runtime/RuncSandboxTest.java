package dev.skiff.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.runtime.testing.HostRootfs;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A sandbox without gVisor, under runc (the operator's choice for trusted GPU code on a driver
 * nvproxy does not support), for real: the image's root with writes on the host's disk that go with
 * the sandbox, exactly the NVIDIA device nodes it was given (made by runc with the host's numbers;
 * no driver is needed to see them), a read-only volume, and nothing left behind.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(120)
class RuncSandboxTest {
  @TempDir static Path tmp;
  ImageStore store;
  GvisorRuntime rt;

  @BeforeAll
  void setUp() throws Exception {
    Environment.requireRunsc();
    try {
      Runsc.runc();
    } catch (IllegalStateException e) {
      Assumptions.abort(e.getMessage());
    }
    store = ImageStore.open(tmp.resolve("home"));
    Path rootfs = HostRootfs.tools().binaries("/usr/bin/stat").build(tmp.resolve("rootfs"));
    store.importImage(rootfs.toString(), ImageRef.parse("tools:1"), ImportProgress.NONE);
    rt = GvisorRuntime.open(store, SandboxRuntime.Config.defaults(), () -> 0);
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

  @Test
  void aRuncSandboxSeesItsDevicesWritesItsOwnRootAndLeavesNothing() throws Exception {
    Path data = Files.createDirectories(tmp.resolve("data"));
    Files.writeString(data.resolve("f"), "kept");
    SandboxOptions o =
        SandboxOptions.builder()
            .runc(true)
            .device(new SandboxOptions.Device("/dev/nvidiactl", 195, 255))
            .device(new SandboxOptions.Device("/dev/nvidia3", 195, 3))
            .volume(new SandboxOptions.Volume(data, "/data", true))
            .build();
    Sandbox sb =
        rt.run(
            ImageSpec.parse("tools:1"),
            o,
            List.of(
                "sh",
                "-c",
                "stat -c '%F %t:%T %a' /dev/nvidia3 /dev/nvidiactl; echo nodes /dev/nvidia*;"
                    + " echo new > /etc/new && cat /etc/new; cat /data/f; echo;"
                    + " (echo x > /data/f) 2>/dev/null || echo read-only;"
                    + " echo LD=$LD_LIBRARY_PATH"),
            false);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    Thread[] pumps = sb.main().orElseThrow().pipeTo(out, err);
    int exit = sb.main().orElseThrow().waitFor().code();
    for (Thread t : pumps) {
      t.join();
    }
    String text = out.toString(StandardCharsets.UTF_8);
    assertEquals(0, exit, text + err.toString(StandardCharsets.UTF_8));
    List<String> lines = text.lines().toList();
    // 195 is c3 in hex, 255 is ff
    assertEquals("character special file c3:3 666", lines.get(0), text);
    assertEquals("character special file c3:ff 666", lines.get(1), text);
    assertEquals("nodes /dev/nvidia3 /dev/nvidiactl", lines.get(2), "exactly the nodes given");
    assertEquals("new", lines.get(3));
    assertEquals("kept", lines.get(4));
    assertEquals("read-only", lines.get(5));
    assertEquals("LD=/usr/local/nvidia/lib64", lines.get(6));
    assertEquals("kept", Files.readString(data.resolve("f")));
    String id = sb.id();
    sb.close();
    assertFalse(Files.exists(rt.sandboxes().dir(id)), "its directory (and writes) are gone");
    Runsc.Result list =
        Runsc.run(
            List.of(Runsc.runc().toString(), "--root=" + rt.runsc().runcRoot(), "list", "-q"),
            java.time.Duration.ofSeconds(10));
    assertFalse(list.output().contains(id), list.output());
    try (Sandbox warm = rt.create(ImageSpec.parse("tools:1"), o)) {
      SandboxProcess p = warm.exec(List.of("cat", "/data/f"), Sandbox.Exec.defaults());
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      for (Thread t : p.pipeTo(got, new ByteArrayOutputStream())) {
        t.join();
      }
      assertEquals(0, p.waitFor().code());
      assertEquals("kept", got.toString(StandardCharsets.UTF_8), "a warm runc sandbox execs");
      assertThrows(IllegalStateException.class, () -> warm.checkpoint("x"), "no snapshots");
    }
  }
}
