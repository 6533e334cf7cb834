package dev.skiff.casfs.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.testing.DockerRegistry;
import dev.skiff.casfs.testing.OciLayouts;
import dev.skiff.casfs.testing.Tars;
import dev.skiff.casfs.testing.Trees;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Push to a real registry (Debian's docker-registry): what goes up is a valid OCI image (skopeo
 * inspects it), and what comes back down is the same tree, file by file: types, modes, owners,
 * times, contents, links, device numbers, and extended attributes, text and binary. A second push
 * of the same image uploads nothing new.
 */
class RegistryPushTest {
  @TempDir Path tmp;
  private static final ObjectMapper JSON = new ObjectMapper();

  private static TarArchiveEntry owned(String name, byte type, int uid, int gid, int mode) {
    TarArchiveEntry e = new TarArchiveEntry(name, type);
    e.setUserId(uid);
    e.setGroupId(gid);
    e.setMode(mode);
    e.setModTime(1_650_000_000_000L);
    return e;
  }

  /** An OCI layout of one layer with every kind of file, owner and attribute in it. */
  static Path richLayout(Path dir) throws IOException {
    byte[] big = new byte[(3 << 20) + 17];
    new SplittableRandom(9).nextBytes(big);
    TarArchiveEntry cap = owned("usr/bin/pinger", TarConstants.LF_NORMAL, 0, 0, 0755);
    cap.addPaxHeader("SCHILY.xattr.user.note", "text value");
    // security.capability's bytes (cap_net_raw+ep) are not text: libarchive's base64 form
    cap.addPaxHeader(
        "LIBARCHIVE.xattr.security.capability",
        java.util.Base64.getEncoder()
            .encodeToString(
                new byte[] {1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
    TarArchiveEntry dev = owned("dev/null2", TarConstants.LF_CHR, 0, 0, 0666);
    dev.setDevMajor(1);
    dev.setDevMinor(3);
    byte[] tar =
        new Tars()
            .dir("etc", 0755)
            .file("etc/hostname", "skiff\n")
            .entry(owned("home/", TarConstants.LF_DIR, 0, 0, 0755), new byte[0])
            .entry(owned("home/ada/", TarConstants.LF_DIR, 1000, 1000, 0700), new byte[0])
            .entry(
                owned("home/ada/notes", TarConstants.LF_NORMAL, 1000, 100, 0600), "mine".getBytes())
            .dir("usr", 0755)
            .dir("usr/bin", 0755)
            .entry(cap, "#!/bin/sh\n".getBytes())
            .file("usr/big.bin", big, 0644)
            .hardlink("usr/big-again.bin", "usr/big.bin")
            .symlink("usr/latest", "big.bin")
            .dir("dev", 0755)
            .entry(dev, new byte[0])
            .entry(owned("dev/pipe", TarConstants.LF_FIFO, 0, 0, 0644), new byte[0])
            .entry(owned("tmp/", TarConstants.LF_DIR, 0, 0, 01777), new byte[0])
            .bytes();
    return OciLayouts.write(dir, "t", "application/vnd.oci.image.layer.v1.tar+gzip", tar);
  }

  @Test
  void whatIsPushedIsAValidImageAndComesBackTheSame() throws Exception {
    Path oci = richLayout(tmp.resolve("oci"));
    try (DockerRegistry registry = DockerRegistry.start(tmp.resolve("registry"));
        ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      store.importImage(oci + ":t", ImageRef.parse("app:1"), ImportProgress.NONE);
      List<String> before = Trees.ofImage(store, ImageRef.parse("app:1"));
      assertTrue(
          before.stream().anyMatch(l -> l.contains("security.capability=01000002")),
          before.toString());
      assertTrue(
          before.stream()
              .anyMatch(l -> l.startsWith("dev/null2 mode=20666") && l.contains("rdev=259")),
          before.toString());

      RegistryRef dest = RegistryRef.parse("docker://" + registry.address() + "/team/pushed:1");
      RegistryPush.Result first =
          store.pushToRegistry(ImageRef.parse("app:1"), dest, RegistryClient.Options.defaults());
      assertTrue(first.layerUploaded());

      JsonNode inspect =
          JSON.readTree(
              DockerRegistry.run(
                  List.of("skopeo", "inspect", "--tls-verify=false", dest.toString())));
      assertEquals(first.manifestDigest(), inspect.path("Digest").asText());
      assertEquals(first.layerDigest(), inspect.path("Layers").get(0).asText());
      assertEquals("amd64", inspect.path("Architecture").asText());

      store.pullFromRegistry(
          dest, RegistryClient.Options.defaults(), ImageRef.parse("back:1"), ImportProgress.NONE);
      assertEquals(before, Trees.ofImage(store, ImageRef.parse("back:1")));

      RegistryPush.Result again =
          store.pushToRegistry(
              ImageRef.parse("app:1"), dest.withTag("2"), RegistryClient.Options.defaults());
      assertEquals(first.layerDigest(), again.layerDigest(), "the same tree makes the same layer");
      assertFalse(again.layerUploaded(), "a layer the repository has is not uploaded again");
    }
  }
}
