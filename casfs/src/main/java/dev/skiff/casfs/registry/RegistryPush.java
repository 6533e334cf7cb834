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
import java.util.HashMap;
import java.util.HexFormat;
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

  /** Writes image {@code ref}'s tree to {@code file} as a gzip tar (an image build's base). */
  public static void exportTree(ImageStore store, ImageRef ref, Path file) throws IOException {
    var digest = store.resolve(ref).orElseThrow(() -> new NoSuchImageException(ref, null));
    try (ImageIndex index = store.openIndex(digest)) {
      writeLayer(
          new ImageFileSystem(
              index, new ChunkReader(store.blobs(), 64L << 20, null, Runnable::run)),
          file);
    }
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
      tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_STAR); // base-256: no PAX of its own
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
    for (var e : fs.entries(dir)) {
      String path = prefix + e.getKey();
      long ino = e.getValue();
      Inode in = fs.getattr(ino);
      int type = in.mode() & Inode.S_IFMT;
      // Every PAX record an entry needs goes into one extended header written here, with raw
      // bytes (Commons Compress writes its records as UTF-8 text, which a binary attribute value
      // is not); the entry itself is given what needs no record (a short ASCII name, whole
      // seconds, numbers in base-256), so Commons Compress adds no header of its own, and readers
      // that take only the last extended header before an entry (Go's) see all of them.
      java.io.ByteArrayOutputStream records = new java.io.ByteArrayOutputStream();
      String name = type == Inode.S_IFDIR ? path + "/" : path;
      String link = null;
      byte flag;
      boolean content = false;
      if (type == Inode.S_IFDIR) {
        flag = TarConstants.LF_DIR;
      } else if (type == Inode.S_IFLNK) {
        flag = TarConstants.LF_SYMLINK;
        link = new String(fs.readlink(ino), StandardCharsets.UTF_8);
      } else if (type == Inode.S_IFREG && in.nlink() > 1 && links.containsKey(ino)) {
        flag = TarConstants.LF_LINK;
        link = links.get(ino);
      } else if (type == Inode.S_IFREG) {
        flag = TarConstants.LF_NORMAL;
        content = true;
        if (in.nlink() > 1) {
          links.put(ino, path);
        }
      } else if (type == 0020000 || type == 0060000) {
        flag = type == 0020000 ? TarConstants.LF_CHR : TarConstants.LF_BLK;
      } else if (type == 0010000) {
        flag = TarConstants.LF_FIFO;
      } else {
        continue; // sockets are not archived
      }
      if (!fitsUstar(name)) {
        paxRecord(records, "path", name.getBytes(StandardCharsets.UTF_8));
        name = "PaxHeaders/" + ino + (type == Inode.S_IFDIR ? "/" : "");
      }
      if (link != null && !fitsUstar(link)) {
        paxRecord(records, "linkpath", link.getBytes(StandardCharsets.UTF_8));
        link = "PaxHeaders/link";
      }
      if (in.mtimeNanos() != 0) {
        paxRecord(
            records,
            "mtime",
            String.format("%d.%09d", in.mtimeSeconds(), in.mtimeNanos())
                .getBytes(StandardCharsets.US_ASCII));
      }
      TarArchiveEntry t = new TarArchiveEntry(name, flag);
      if (link != null) {
        t.setLinkName(link);
      }
      if (content) {
        t.setSize(in.size());
      }
      if (flag == TarConstants.LF_CHR || flag == TarConstants.LF_BLK) {
        t.setDevMajor((int) ((in.rdev() >>> 8) & 0xfff));
        t.setDevMinor((int) ((in.rdev() & 0xff) | ((in.rdev() >>> 12) & 0xfff00)));
      }
      t.setMode(in.mode() & 07777);
      t.setUserId(in.uid());
      t.setGroupId(in.gid());
      t.setModTime(in.mtimeSeconds() * 1000);
      byte[] names = fs.listxattr(ino);
      int start = 0;
      for (int i = 0; i < names.length; i++) {
        if (names[i] == 0) {
          byte[] xname = java.util.Arrays.copyOfRange(names, start, i);
          byte[] value = fs.getxattr(ino, xname);
          if (value != null) {
            paxRecord(records, "SCHILY.xattr." + new String(xname, StandardCharsets.UTF_8), value);
          }
          start = i + 1;
        }
      }
      if (records.size() > 0) {
        TarArchiveEntry x =
            new TarArchiveEntry("PaxHeaders/" + ino, TarConstants.LF_PAX_EXTENDED_HEADER_LC);
        x.setSize(records.size());
        x.setModTime(in.mtimeSeconds() * 1000);
        tar.putArchiveEntry(x);
        records.writeTo(tar);
        tar.closeArchiveEntry();
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

  /** Whether a name fits a ustar header's name field as it is: ASCII, at most 100 bytes. */
  private static boolean fitsUstar(String name) {
    return name.length() <= 100 && name.chars().allMatch(c -> c > 0 && c < 128);
  }

  /** A PAX record, {@code LENGTH KEY=VALUE\n}, whose length counts itself. */
  static void paxRecord(java.io.ByteArrayOutputStream out, String key, byte[] value) {
    byte[] k = key.getBytes(StandardCharsets.UTF_8);
    int body = 1 + k.length + 1 + value.length + 1; // " " key "=" value "\n"
    int len = body + Integer.toString(body).length();
    if (Integer.toString(len).length() != Integer.toString(body).length()) {
      len++;
    }
    out.writeBytes((len + " ").getBytes(StandardCharsets.US_ASCII));
    out.writeBytes(k);
    out.write('=');
    out.writeBytes(value);
    out.write('\n');
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
