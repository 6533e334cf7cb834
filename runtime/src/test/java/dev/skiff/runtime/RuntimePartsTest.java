package dev.skiff.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.casfs.digest.Digest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The runtime's pure parts, without root or runsc: what they decide is checked here directly. */
class RuntimePartsTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  @Test
  void exitStatusesSayHowAProcessEnded() {
    assertEquals(new ExitStatus(0, 0, false, false), ExitStatus.exited(0));
    assertTrue(ExitStatus.exited(0).success());
    ExitStatus killed = ExitStatus.exited(137);
    assertEquals(9, killed.signal());
    assertEquals("killed by signal 9", killed.toString());
    assertEquals(3, ExitStatus.exited(3).shellCode());
    ExitStatus late = ExitStatus.of(137, true, false);
    assertEquals(124, late.shellCode());
    assertFalse(late.success());
    assertTrue(ExitStatus.of(137, false, true).toString().contains("memory"));
    assertEquals(0, ExitStatus.exited(128).signal());
    assertEquals(0, ExitStatus.exited(200).signal());
  }

  private JsonNode spec(SandboxOptions o, String cgroups) throws IOException {
    OciSpec.Process p =
        new OciSpec.Process(List.of("/bin/true"), List.of("PATH=/bin"), "/", 0, 0, List.of());
    return JSON.readTree(OciSpec.write(p, tmp, o, List.of(), "skiff", cgroups));
  }

  @Test
  void cpuLimitsBecomeAQuotaPerPeriodWithAFloor() throws IOException {
    JsonNode cpu =
        spec(SandboxOptions.builder().cpus(0.5).build(), "/skiff/x")
            .path("linux")
            .path("resources");
    assertEquals(50_000, cpu.path("cpu").path("quota").asLong());
    assertEquals(100_000, cpu.path("cpu").path("period").asLong());
    assertEquals(
        1000,
        spec(SandboxOptions.builder().cpus(0.0001).build(), "/skiff/x")
            .path("linux")
            .path("resources")
            .path("cpu")
            .path("quota")
            .asLong());
    assertEquals(
        200_000,
        spec(SandboxOptions.builder().cpus(2).memory(1 << 30).build(), "/skiff/x")
            .path("linux")
            .path("resources")
            .path("cpu")
            .path("quota")
            .asLong());
    JsonNode none = spec(SandboxOptions.builder().cpus(2).build(), null).path("linux");
    assertTrue(none.path("resources").isMissingNode(), "no cgroup: no limits in the spec");
  }

  @Test
  void noNetworkNamespaceOnlyWhenTheHostsNetworkIsAskedFor() throws IOException {
    JsonNode own = spec(SandboxOptions.defaults(), null).path("linux").path("namespaces");
    JsonNode host =
        spec(SandboxOptions.builder().network(true).build(), null).path("linux").path("namespaces");
    assertTrue(own.toString().contains("\"network\""));
    assertFalse(host.toString().contains("\"network\""));
  }

  @Test
  void runscFlagsFollowEachRelease() {
    Path bin = Path.of("/usr/bin/runsc");
    Runsc old = Runsc.of(bin, "release-20221212.0", 20221212, tmp, Runsc.Platform.PTRACE);
    Runsc recent = Runsc.of(bin, "release-20240729.0", 20240729, tmp, Runsc.Platform.SYSTRAP);
    assertFalse(old.hasSystrap());
    assertTrue(recent.hasSystrap());
    SandboxOptions scratch = SandboxOptions.builder().scratch(Path.of("/var/scratch")).build();
    assertTrue(old.command(scratch, null, "run").contains("--overlay2=root:/var/scratch"));
    assertTrue(recent.command(scratch, null, "run").contains("--overlay2=root:dir=/var/scratch"));
    assertTrue(
        recent.command(SandboxOptions.defaults(), null, "run").contains("--overlay2=root:memory"));
    assertTrue(recent.command(SandboxOptions.defaults(), null, "run").contains("--network=none"));
    assertTrue(
        recent
            .command(SandboxOptions.builder().network(true).build(), null, "run")
            .contains("--network=host"));
    assertTrue(
        recent.command(SandboxOptions.defaults(), null, "run").contains("--platform=systrap"));
    assertEquals(List.of("--compression=none"), recent.checkpointFlags());
    assertEquals(List.of(), old.checkpointFlags());
    assertEquals(
        List.of(bin.toString(), "--root=" + tmp, "kill", "--all", "x", "KILL"),
        recent.plain("kill", "--all", "x", "KILL"));
  }

  /** What the gpu module gives a sandbox with GPUs 0 and 4: their nodes and the driver's two. */
  private static SandboxOptions gpus() {
    return SandboxOptions.builder()
        .device(new SandboxOptions.Device("/dev/nvidiactl", 195, 255))
        .device(new SandboxOptions.Device("/dev/nvidia-uvm", 510, 0))
        .device(new SandboxOptions.Device("/dev/nvidia0", 195, 0))
        .device(new SandboxOptions.Device("/dev/nvidia4", 195, 4))
        .build();
  }

  @Test
  void aSandboxWithGpusHasExactlyTheirDeviceNodesInItsSpec() throws IOException {
    assertEquals(
        JSON.readTree(
            """
            [{"path":"/dev/nvidiactl","type":"c","major":195,"minor":255,"fileMode":438,"uid":0,"gid":0},
             {"path":"/dev/nvidia-uvm","type":"c","major":510,"minor":0,"fileMode":438,"uid":0,"gid":0},
             {"path":"/dev/nvidia0","type":"c","major":195,"minor":0,"fileMode":438,"uid":0,"gid":0},
             {"path":"/dev/nvidia4","type":"c","major":195,"minor":4,"fileMode":438,"uid":0,"gid":0}]
            """),
        spec(gpus(), null).path("linux").path("devices"));
    assertTrue(
        spec(SandboxOptions.defaults(), null).path("linux").path("devices").isMissingNode(),
        "no GPUs: no devices at all");
    assertThrows(
        IllegalArgumentException.class,
        () -> new SandboxOptions.Device("/dev/sda", 8, 0),
        "only NVIDIA nodes pass");
  }

  @Test
  void theDriversLibrariesComeAfterTheImagesOwn() {
    assertEquals(
        List.of("PATH=/bin", "LD_LIBRARY_PATH=/usr/local/nvidia/lib64"),
        OciSpec.withDriverLibraries(List.of("PATH=/bin")));
    assertEquals(
        List.of("LD_LIBRARY_PATH=/opt/lib:/usr/local/nvidia/lib64"),
        OciSpec.withDriverLibraries(List.of("LD_LIBRARY_PATH=/opt/lib")));
    assertEquals(
        List.of("LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64"),
        OciSpec.withDriverLibraries(
            List.of("LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64")),
        "a CUDA image's value, which has it, is left as it is");
  }

  @Test
  void aSandboxWithGpusRunsWithNvproxyOnARunscThatHasIt() {
    Path bin = Path.of("/usr/bin/runsc");
    Runsc recent = Runsc.of(bin, "release-20240729.0", 20240729, tmp, Runsc.Platform.SYSTRAP);
    assertEquals(
        List.of(
            bin.toString(),
            "--root=" + tmp,
            "--platform=systrap",
            "--network=none",
            "--overlay2=root:memory",
            "--nvproxy=true",
            "run",
            "--bundle=/b",
            "id"),
        recent.command(gpus(), null, "run", "--bundle=/b", "id"));
    assertFalse(recent.command(SandboxOptions.defaults(), null, "run").contains("--nvproxy=true"));
    Runsc old = Runsc.of(bin, "release-20221212.0", 20221212, tmp, Runsc.Platform.PTRACE);
    assertFalse(old.hasNvproxy());
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> old.command(gpus(), null, "run"));
    assertTrue(e.getMessage().contains("has no nvproxy"), e.getMessage());
  }

  @Test
  void aSnapshotRestoresOnlyOnItsImageReleaseAndPlatform() throws IOException {
    Digest d = Digest.parse("xxh3-128:" + "ab".repeat(16));
    Snapshot s =
        new Snapshot(
            "warm",
            "py:1",
            d.toString(),
            List.of("python3"),
            "now",
            "release-20240729.0",
            "systrap",
            tmp);
    s.checkRestorable(d, "release-20240729.0", "systrap");
    IOException image =
        assertThrows(
            IOException.class,
            () ->
                s.checkRestorable(
                    Digest.parse("xxh3-128:" + "cd".repeat(16)), "release-20240729.0", "systrap"));
    assertTrue(image.getMessage().contains("taken on image"), image.getMessage());
    IOException release =
        assertThrows(IOException.class, () -> s.checkRestorable(d, "release-20221212.0", "ptrace"));
    assertTrue(
        release.getMessage().contains("release-20240729.0")
            && release.getMessage().contains("systrap")
            && release.getMessage().contains("ptrace"),
        release.getMessage());
    assertFalse(release.getMessage().contains("--"), "no flag names: " + release.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Snapshot.checkName("../x"));
    assertEquals("ok-1.2", Snapshot.checkName("ok-1.2"));
  }

  @Test
  void volumeSpecsParseOrSayWhatIsWanted() {
    SandboxOptions.Volume v = SandboxOptions.Volume.parse("/srv/data:/data:ro");
    assertEquals(Path.of("/srv/data"), v.source());
    assertEquals("/data", v.target());
    assertTrue(v.readOnly());
    assertFalse(SandboxOptions.Volume.parse("/srv/data:/data").readOnly());
    assertFalse(SandboxOptions.Volume.parse("/srv/data:/data:rw").readOnly());
    for (String bad :
        List.of("/srv/data", "/srv:/data:rx", "/srv:relative", "/srv:/a/../etc", "a:b:c:d")) {
      assertThrows(IllegalArgumentException.class, () -> SandboxOptions.Volume.parse(bad), bad);
    }
  }

  @Test
  void usersResolveByIdOrByNameInTheImagesOwnFiles() throws IOException {
    Path root = Files.createDirectories(tmp.resolve("root/etc"));
    Files.writeString(
        root.resolve("passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n");
    Files.writeString(root.resolve("group"), "root:x:0:\nstaff:x:50:\n");
    Path image = tmp.resolve("root");
    assertEquals(List.of(0L, 0L), ids(OciSpec.resolveUser(null, image)));
    assertEquals(List.of(1000L, 1001L), ids(OciSpec.resolveUser("app", image)));
    assertEquals(List.of(1000L, 50L), ids(OciSpec.resolveUser("app:staff", image)));
    assertEquals(List.of(1000L, 1001L), ids(OciSpec.resolveUser("1000", image)));
    assertEquals(List.of(7L, 7L), ids(OciSpec.resolveUser("7", image)));
    assertEquals(List.of(7L, 8L), ids(OciSpec.resolveUser("7:8", image)));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> OciSpec.resolveUser("nobody", image));
    assertTrue(e.getMessage().contains("no user 'nobody'"), e.getMessage());
  }

  private static List<Long> ids(long[] a) {
    return List.of(a[0], a[1]);
  }

  @Test
  void execOptionsOverrideTheImagesDefaults() {
    Sandbox.Exec e = Sandbox.Exec.defaults().withEnv("A=1").withUser("app").withWorkdir("/w");
    assertEquals(List.of("A=1"), e.env());
    assertEquals("app", e.user());
    assertEquals("/w", e.workdir());
    assertFalse(e.stdin());
    assertTrue(e.withStdin(true).stdin());
  }

  @Test
  void theEntrypointPrefixesAFirstProcessOnlyAndOptionsReplaceIt() throws IOException {
    ImageConfig image =
        ImageConfig.parse(
            "{\"config\":{\"Entrypoint\":[\"python3\"],\"Cmd\":[\"app.py\"],"
                + "\"WorkingDir\":\"/app\"}}");
    Path root = Files.createDirectories(tmp.resolve("ep"));
    SandboxOptions plain = SandboxOptions.defaults();
    assertEquals(
        List.of("python3", "app.py"), OciSpec.process(image, plain, List.of(), root).args());
    assertEquals(
        List.of("python3", "-c", "1"),
        OciSpec.process(image, plain, List.of("-c", "1"), root).args());
    SandboxOptions own = SandboxOptions.builder().entrypoint(List.of("/bin/sh", "-c")).build();
    assertEquals(
        List.of("/bin/sh", "-c", "true"),
        OciSpec.process(image, own, List.of("true"), root).args());
    assertEquals(List.of("/bin/sh", "-c"), OciSpec.process(image, own, List.of(), root).args());
    OciSpec.Process exec = OciSpec.execProcess(image, plain, List.of("/bin/cat", "f"), root);
    assertEquals(List.of("/bin/cat", "f"), exec.args());
    assertEquals("/app", exec.cwd());
  }
}
