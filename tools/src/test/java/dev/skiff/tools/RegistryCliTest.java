package dev.skiff.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.DockerRegistry;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.OciLayouts;
import dev.skiff.casfs.testing.Tars;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * skiff pull from a registry as a user runs it: an image pushed with skopeo into Debian's
 * docker-registry comes into the store under the name given, and runs.
 */
@Timeout(300)
class RegistryCliTest {
  @TempDir Path tmp;

  private static byte[] tarOf(Path dir) throws Exception {
    Process p = new ProcessBuilder("tar", "-C", dir.toString(), "-cf", "-", ".").start();
    byte[] b = p.getInputStream().readAllBytes();
    assertEquals(0, p.waitFor());
    return b;
  }

  @Test
  void pullFromARegistryThenRun() throws Exception {
    Environment.requireRunsc();
    Path layout =
        OciLayouts.write(
            tmp.resolve("oci"),
            "t",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            tarOf(dev.skiff.runtime.testing.HostRootfs.tools().build(tmp.resolve("rootfs"))),
            new Tars().file("etc/app.conf", "from the registry\n").bytes());
    String home = tmp.resolve("home").toString();
    try (DockerRegistry registry = DockerRegistry.start(tmp.resolve("registry"))) {
      registry.put(layout, "t", "team/app:1");
      String url = "docker://" + registry.address() + "/team/app:1";
      String pulled = Cli.run(0, "pull", "--store", home, url, "app:1");
      assertTrue(pulled.startsWith("pulled " + url + "@sha256:"), pulled);
      assertTrue(pulled.contains(" as app:1: "), pulled);
      assertTrue(Cli.run(0, "images", "--store", home).contains("app:1"));
      SkiffProcess run =
          new SkiffProcess("run", "--store=" + home, "app:1", "cat", "/etc/app.conf");
      assertEquals(0, run.exit(), run.err());
      assertEquals("from the registry\n", run.out());
      String missing = Cli.run(1, "pull", "--store", home, url.replace(":1", ":2"), "app:2");
      assertTrue(missing.contains("404 MANIFEST_UNKNOWN"), missing);

      // And back out, under another name, which skopeo reads.
      String dest = "docker://" + registry.address() + "/team/copy:1";
      String pushed = Cli.run(0, "push", "--store", home, "app:1", dest);
      assertTrue(pushed.startsWith("pushed app:1 to " + dest + "@sha256:"), pushed);
      String inspect =
          DockerRegistry.run(java.util.List.of("skopeo", "inspect", "--tls-verify=false", dest));
      assertTrue(inspect.contains("\"Architecture\": \"amd64\""), inspect);
    }
  }
}
