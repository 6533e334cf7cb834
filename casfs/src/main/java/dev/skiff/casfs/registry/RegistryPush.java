package dev.skiff.casfs.registry;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.NoSuchImageException;
import dev.skiff.casfs.cache.ChunkReader;
import dev.skiff.casfs.fs.ImageFileSystem;
import dev.skiff.casfs.index.ImageIndex;
import dev.skiff.casfs.index.Inode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

/**
 * Pushes an image of the store to a registry as a valid OCI image: its tree as one gzip layer
 * (every file type, mode, owner, time, hard link and extended attribute, as the index holds them),
 * its config with that layer's diff id, and a manifest under the tag. Blobs the repository has
 * already are not uploaded again.
 */
public final class RegistryPush {
  private static final ObjectMapper JSON = new ObjectMapper();
  static final String LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

  private RegistryPush() {}

  /** What was pushed: the manifest's digest, and the layer's size. */
  public record Result(
      String manifestDigest, String layerDigest, long layerBytes, boolean layerUploaded) {}

  public static Result push(
      ImageStore store, ImageRef image, RegistryRef dest, RegistryClient.Options options)
      throws IOException {
    if (dest.tag() == null) {
      throw new IllegalArgumentException("push to a tag, not a digest: " + dest);
    }
    var digest = store.resolve(image).orElseThrow(() -> new NoSuchImageException(image, null));
    Path layer = Files.createTempFile(store.scratch(), "push-", ".tar.gz");
    try (ImageIndex index = store.openIndex(digest)) {
      ImageFileSystem fs =
          new ImageFileSystem(
              index, new ChunkReader(store.blobs(), 64L << 20, null, Runnable::run));
      String[] digests = writeLayer(fs, layer);
      String layerDigest = digests[0];
      String diffId = digests[1];
      byte[] config = config(index.meta("config"), diffId);
      String configDigest = "sha256:" + RegistryClient.sha256(config);
      long layerBytes = Files.size(layer);
      ObjectNode m = JSON.createObjectNode();
      m.put("schemaVersion", 2);
      m.put("mediaType", RegistryClient.OCI_MANIFEST);
      m.putObject("config")
          .put("mediaType", RegistryClient.OCI_CONFIG)
          .put("digest", configDigest)
          .put("size", config.length);
      m.putArray("layers")
          .addObject()
          .put("mediaType", LAYER_GZIP)
          .put("digest", layerDigest)
          .put("size", layerBytes);
      byte[] manifest = JSON.writeValueAsBytes(m);

      RegistryClient client = new RegistryClient(dest.registry(), options);
      boolean uploaded = false;
      if (!client.hasBlob(dest.repository(), layerDigest)) {
        client.uploadBlob(dest.repository(), layerDigest, layer);
        uploaded = true;
      }
      if (!client.hasBlob(dest.repository(), configDigest)) {
        Path c = Files.createTempFile(store.scratch(), "push-", ".json");
        try {
          Files.write(c, config);
          client.uploadBlob(dest.repository(), configDigest, c);
        } finally {
          Files.deleteIfExists(c);
        }
      }
      String pushed =
          client.putManifest(dest.repository(), dest.tag(), RegistryClient.OCI_MANIFEST, manifest);
      return new Result(pushed, layerDigest, layerBytes, uploaded);
    } finally {
      Files.deleteIfExists(layer);
    }
  }

  /** The image's config with this one layer's diff id (an image without one gets a bare one). */
  static byte[] config(String stored, String diffId) throws IOException {
    ObjectNode c =
        stored == null || stored.isBlank()
            ? JSON.createObjectNode()
            : (ObjectNode) JSON.readTree(stored);
    if (!c.has("architecture")) {
      c.put("architecture", "amd64");
    }
    if (!c.has("os")) {
      c.put("os", "linux");
    }
    c.remove("history"); // its entries counted the layers this one replaces
    ObjectNode rootfs = c.putObject("rootfs");
    rootfs.put("type", "layers");
    rootfs.putArray("diff_ids").add(diffId);
    return JSON.writeValueAsBytes(c);
  }

  /** Writes the tree as a gzip tar; returns {compressed digest, uncompressed digest (diff id)}. */
  static String[] writeLayer(ImageFileSystem fs, Path file) throws IOException {
    MessageDigest outer = sha256();
    MessageDigest inner = sha256();
    try (OutputStream f = Files.newOutputStream(file);
        DigestOutputStream compressed = new DigestOutputStream(f, outer);
        GZIPOutputStream gz = new GZIPOutputStream(compressed, 1 << 16);
        DigestOutputStream raw = new DigestOutputStream(gz, inner);
        TarArchiveOutputStream tar = new TarArchiveOutputStream(raw, "UTF-8")) {
      tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
      tar.setAddPaxHeadersForNonAsciiNames(true);
      walk(fs, ImageIndex.ROOT, "", tar, new HashMap<>());
      tar.finish();
    }
    return new String[] {
      "sha256:" + HexFormat.of().formatHex(outer.digest()),
      "sha256:" + HexFormat.of().formatHex(inner.digest())
    };
  }

  private static void walk(
      ImageFileSystem fs,
      long dir,
      String prefix,
      TarArchiveOutputStream tar,
      Map<Long, String> links)
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
      String path = prefix + e[0];
      long ino = (Long) e[1];
      Inode in = fs.getattr(ino);
      int type = in.mode() & Inode.S_IFMT;
      TarArchiveEntry t;
      boolean content = false;
      if (type == Inode.S_IFDIR) {
        t = new TarArchiveEntry(path + "/", TarConstants.LF_DIR);
      } else if (type == Inode.S_IFLNK) {
        t = new TarArchiveEntry(path, TarConstants.LF_SYMLINK);
        t.setLinkName(new String(fs.readlink(ino), StandardCharsets.UTF_8));
      } else if (type == Inode.S_IFREG && in.nlink() > 1 && links.containsKey(ino)) {
        t = new TarArchiveEntry(path, TarConstants.LF_LINK);
        t.setLinkName(links.get(ino));
      } else if (type == Inode.S_IFREG) {
        t = new TarArchiveEntry(path, TarConstants.LF_NORMAL);
        t.setSize(in.size());
        content = true;
        if (in.nlink() > 1) {
          links.put(ino, path);
        }
      } else if (type == 0020000 || type == 0060000) {
        t = new TarArchiveEntry(path, type == 0020000 ? TarConstants.LF_CHR : TarConstants.LF_BLK);
        t.setDevMajor((int) ((in.rdev() >>> 8) & 0xfff));
        t.setDevMinor((int) ((in.rdev() & 0xff) | ((in.rdev() >>> 12) & 0xfff00)));
      } else if (type == 0010000) {
        t = new TarArchiveEntry(path, TarConstants.LF_FIFO);
      } else {
        continue; // sockets are not archived
      }
      t.setMode(in.mode() & 07777);
      t.setUserId(in.uid());
      t.setGroupId(in.gid());
      t.setModTime(in.mtimeSeconds() * 1000 + in.mtimeNanos() / 1_000_000);
      byte[] names = fs.listxattr(ino);
      int start = 0;
      for (int i = 0; i < names.length; i++) {
        if (names[i] == 0) {
          byte[] name = java.util.Arrays.copyOfRange(names, start, i);
          byte[] value = fs.getxattr(ino, name);
          if (value != null) {
            addXattr(t, name, value);
          }
          start = i + 1;
        }
      }
      tar.putArchiveEntry(t);
      if (content) {
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        long at = 0;
        while (at < in.size()) {
          buf.clear();
          int n = fs.read(ino, at, (int) Math.min(buf.capacity(), in.size() - at), buf);
          if (n <= 0) {
            throw new IOException(path + ": the image holds less than its size says");
          }
          tar.write(buf.array(), 0, n);
          at += n;
        }
        fs.release(ino);
      }
      tar.closeArchiveEntry();
      if (type == Inode.S_IFDIR) {
        walk(fs, ino, path + "/", tar, links);
      }
    }
  }

  /**
   * An extended attribute as a PAX record: {@code SCHILY.xattr.NAME} (GNU tar's, what Docker and
   * containerd read) when the value is text, as PAX records are written as UTF-8; a binary value
   * ({@code security.capability}, say) as libarchive's {@code LIBARCHIVE.xattr.NAME} with the value
   * in base64, which survives that, and which Skiff's importer and bsdtar read.
   */
  static void addXattr(TarArchiveEntry t, byte[] name, byte[] value) {
    String n = new String(name, StandardCharsets.UTF_8);
    var decoder =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
            .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT);
    try {
      String text = decoder.decode(ByteBuffer.wrap(value)).toString();
      if (text.indexOf('\0') < 0) {
        t.addPaxHeader("SCHILY.xattr." + n, text);
        return;
      }
    } catch (java.nio.charset.CharacterCodingException binary) {
      // below
    }
    t.addPaxHeader(
        "LIBARCHIVE.xattr." + java.net.URLEncoder.encode(n, StandardCharsets.UTF_8),
        java.util.Base64.getEncoder().encodeToString(value));
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
