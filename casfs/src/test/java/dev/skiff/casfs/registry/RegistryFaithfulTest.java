package dev.skiff.casfs.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.testing.DockerRegistry;
import dev.skiff.casfs.testing.Environment;
import dev.skiff.casfs.testing.Trees;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A pulled image is what umoci unpacks of the same image, file by file: types, modes, owners, link
 * counts, times, device numbers, contents, link targets and extended attributes (as root, which
 * owners, devices and security.* attributes need).
 */
class RegistryFaithfulTest {
  @TempDir Path tmp;

  private static void sh(String script) throws Exception {
    DockerRegistry.run(List.of("sh", "-ec", script));
  }

  /**
   * An image layer made as images are made: GNU tar of a directory with every kind of file, owner
   * and attribute, the binary security.capability among them (as setcap leaves it).
   */
  private Path layoutFromADirectory() throws Exception {
    Path src = tmp.resolve("src");
    try {
      sh(
          "d="
              + src
              + "; mkdir -p $d/etc $d/home/ada $d/usr/bin $d/dev $d/tmp;"
              + " echo skiff > $d/etc/hostname; echo mine > $d/home/ada/notes;"
              + " chown 1000:1000 $d/home/ada; chmod 700 $d/home/ada;"
              + " chown 1000:100 $d/home/ada/notes; chmod 600 $d/home/ada/notes;"
              + " printf '#!/bin/sh\n' > $d/usr/bin/pinger; chmod 755 $d/usr/bin/pinger;"
              + " setfattr -n user.note -v 'text value' $d/usr/bin/pinger;"
              + " setfattr -n security.capability -v 0x0100000200200000000000000000000000000000"
              + " $d/usr/bin/pinger;"
              + " head -c 3145745 /dev/urandom > $d/usr/big.bin; ln $d/usr/big.bin $d/usr/big-again.bin;"
              + " ln -s big.bin $d/usr/latest; mknod $d/dev/null2 c 1 3; mkfifo $d/dev/pipe;"
              + " chmod 1777 $d/tmp;"
              + " l=$d/usr/share/a-rather-long-directory-name-that-goes-on/and-on-and-on-past-what-ustar-holds;"
              + " mkdir -p $l; echo deep > $l/the-file-at-the-end-of-a-path-longer-than-a-hundred-bytes.txt;"
              + " ln -s $(echo $l | sed s,$d/usr/,,)/the-file-at-the-end-of-a-path-longer-than-a-hundred-bytes.txt"
              + " $d/usr/long-link; echo hi > $d/usr/share/na\u00efve-\u00fcnicode.txt;"
              + " find $d -exec touch -h -d @1650000000 {} +");
    } catch (java.io.IOException e) {
      org.junit.jupiter.api.Assumptions.abort(
          "this file system cannot hold the tree: " + e.getMessage());
    }
    Path tar = tmp.resolve("layer.tar");
    sh(
        "tar --create --file="
            + tar
            + " --xattrs --xattrs-include='*' --numeric-owner --format=posix -C "
            + src
            + " .");
    return dev.skiff.casfs.testing.OciLayouts.write(
        tmp.resolve("oci"),
        "t",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        java.nio.file.Files.readAllBytes(tar));
  }

  @Test
  void aPulledImageIsWhatUmociUnpacks() throws Exception {
    Environment.requireRoot("owners, device nodes and security.* attributes of the unpacked tree");
    org.junit.jupiter.api.Assumptions.assumeTrue(
        Environment.onPath("umoci") && Environment.onPath("getfattr"), "needs umoci and getfattr");
    Path oci = layoutFromADirectory();
    try (DockerRegistry registry = DockerRegistry.start(tmp.resolve("registry"));
        ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      registry.put(oci, "t", "team/rich:1");
      String url = "docker://" + registry.address() + "/team/rich:1";
      store.pullFromRegistry(
          RegistryRef.parse(url),
          RegistryClient.Options.defaults(),
          ImageRef.parse("rich:1"),
          ImportProgress.NONE);
      DockerRegistry.run(
          List.of(
              "skopeo",
              "copy",
              "--quiet",
              "--src-tls-verify=false",
              url,
              "oci:" + tmp.resolve("copy") + ":t"));
      DockerRegistry.run(
          List.of(
              "umoci",
              "unpack",
              "--image",
              tmp.resolve("copy") + ":t",
              tmp.resolve("bundle").toString()));
      assertEquals(
          Trees.ofDirectory(tmp.resolve("bundle/rootfs")),
          Trees.ofImage(store, ImageRef.parse("rich:1")));
    }
  }
}
