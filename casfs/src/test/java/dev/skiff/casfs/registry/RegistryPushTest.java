package dev.skiff.casfs.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.index.Inode;
import dev.skiff.casfs.testing.DockerRegistry;
import dev.skiff.casfs.testing.OciLayouts;
import dev.skiff.casfs.testing.Tars;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
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

  private Path layout() throws IOException {
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
    return OciLayouts.write(
        tmp.resolve("oci"), "t", "application/vnd.oci.image.layer.v1.tar+gzip", tar);
  }

  /** The tree of an image, one line per file, everything a file is. */
  private static List<String> tree(ImageStore store, ImageRef ref) throws IOException {
    List<String> out = new ArrayList<>();
    try (ImageIndex index = store.openIndex(store.resolve(ref).orElseThrow())) {
      ImageFileSystem fs =
          new ImageFileSystem(index, new ChunkReader(store.blobs(), 16 << 20, null, Runnable::run));
      walk(fs, ImageIndex.ROOT, "", out);
    }
    return out;
  }

  private static void walk(ImageFileSystem fs, long dir, String prefix, List<String> out)
      throws IOException {
    List<Object[]> entries = new ArrayList<>();
    fs.readdir(
        dir,
        0,
        (pos, name, ino) -> {
          String n = new String(name, StandardCharsets.UTF_8);
          if (!n.equals(".") && !n.equals("..")) {
            entries.add(new Object[] {n, ino});
          }
          return true;
        });
    for (Object[] e : entries) {
      long ino = (Long) e[1];
      String path = prefix + e[0];
      Inode in = fs.getattr(ino);
      StringBuilder line =
          new StringBuilder(
              String.format(
                  "%s mode=%o uid=%d gid=%d nlink=%d mtime=%d rdev=%d size=%d",
                  path,
                  in.mode(),
                  in.uid(),
                  in.gid(),
                  in.nlink(),
                  in.mtimeSeconds(),
                  in.rdev(),
                  in.size()));
      if (in.isRegular()) {
        ByteBuffer b = ByteBuffer.allocate((int) in.size());
        while (b.hasRemaining() && fs.read(ino, b.position(), b.remaining(), b) > 0) {}
        try {
          line.append(" sha256=")
              .append(
                  HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b.array())));
        } catch (java.security.NoSuchAlgorithmException x) {
          throw new IllegalStateException(x);
        }
      }
      if ((in.mode() & Inode.S_IFMT) == Inode.S_IFLNK) {
        line.append(" -> ").append(new String(fs.readlink(ino), StandardCharsets.UTF_8));
      }
      byte[] names = fs.listxattr(ino);
      int start = 0;
      for (int i = 0; i < names.length; i++) {
        if (names[i] == 0) {
          byte[] n = java.util.Arrays.copyOfRange(names, start, i);
          line.append(' ')
              .append(new String(n, StandardCharsets.UTF_8))
              .append('=')
              .append(HexFormat.of().formatHex(fs.getxattr(ino, n)));
          start = i + 1;
        }
      }
      out.add(line.toString());
      if (in.isDirectory()) {
        walk(fs, ino, path + "/", out);
      }
    }
  }

  @Test
  void whatIsPushedIsAValidImageAndComesBackTheSame() throws Exception {
    Path oci = layout();
    try (DockerRegistry registry = DockerRegistry.start(tmp.resolve("registry"));
        ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      store.importImage(oci + ":t", ImageRef.parse("app:1"), ImportProgress.NONE);
      List<String> before = tree(store, ImageRef.parse("app:1"));
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
      assertEquals(before, tree(store, ImageRef.parse("back:1")));

      RegistryPush.Result again =
          store.pushToRegistry(
              ImageRef.parse("app:1"), dest.withTag("2"), RegistryClient.Options.defaults());
      assertEquals(first.layerDigest(), again.layerDigest(), "the same tree makes the same layer");
      assertFalse(again.layerUploaded(), "a layer the repository has is not uploaded again");
    }
  }
}
