package dev.skiff.casfs.image;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Flattens image layers into one tree, following the OCI image spec's changeset rules: a later
 * entry for a path replaces an earlier one (a directory over a directory keeps its children),
 * {@code .wh.NAME} hides NAME as lower layers left it, {@code .wh..wh..opq} hides everything lower
 * layers put in its directory, and whiteouts never hide what their own layer adds, whatever the
 * order of entries. Paths that are absolute or climb with {@code ..} are refused. Not thread safe.
 */
final class TreeBuilder {
  private static final String WHITEOUT = ".wh.";
  private static final String OPAQUE = ".wh..wh..opq";

  /**
   * Linux's limits (PATH_MAX less the NUL, XATTR_NAME_MAX, XATTR_SIZE_MAX): what a mount can hand
   * back.
   */
  static final int MAX_SYMLINK = 4095;

  static final int MAX_XATTR_NAME = 255;
  static final int MAX_XATTR_VALUE = 65536;

  private final Node root = Node.directory(0755, 0);
  private final ChunkWriter chunks;

  TreeBuilder(ChunkWriter chunks) {
    this.chunks = chunks;
  }

  Node root() {
    return root;
  }

  /**
   * Makes this (empty) tree the tree of image {@code parent}, as layer 0: every inode with its
   * metadata, extended attributes, inline bytes or link target, and its chunks where they are
   * stored, none read. A step of a build is then its parent plus the step's own changes, and costs
   * what the changes cost.
   */
  void seed(dev.skiff.casfs.index.ImageIndex parent) {
    java.util.Map<Long, Node> byIno = new java.util.HashMap<>();
    java.util.Map<String, ChunkWriter.PackSlot> packs = new java.util.HashMap<>();
    copyAttrs(parent, parent.inode(dev.skiff.casfs.index.ImageIndex.ROOT), root, packs);
    byIno.put(dev.skiff.casfs.index.ImageIndex.ROOT, root);
    ArrayDeque<Node> dirs = new ArrayDeque<>();
    java.util.Map<Node, Long> inoOf = new java.util.IdentityHashMap<>();
    inoOf.put(root, dev.skiff.casfs.index.ImageIndex.ROOT);
    dirs.push(root);
    while (!dirs.isEmpty()) {
      Node dir = dirs.pop();
      long dirIno = inoOf.get(dir);
      parent.list(
          dirIno,
          0,
          (position, name, ino) -> {
            Node child = byIno.get(ino);
            if (child == null) {
              dev.skiff.casfs.index.Inode in = parent.inode(ino);
              child = new Node();
              copyAttrs(parent, in, child, packs);
              if (child.isDir()) {
                child.children = new java.util.TreeMap<>();
                inoOf.put(child, ino);
                dirs.push(child);
              }
              byIno.put(ino, child);
            }
            dir.children.put(new String(name, StandardCharsets.ISO_8859_1), child);
            return true;
          });
    }
  }

  private static void copyAttrs(
      dev.skiff.casfs.index.ImageIndex parent,
      dev.skiff.casfs.index.Inode in,
      Node n,
      java.util.Map<String, ChunkWriter.PackSlot> packs) {
    n.mode = in.mode();
    n.uid = Integer.toUnsignedLong(in.uid());
    n.gid = Integer.toUnsignedLong(in.gid());
    n.mtimeSeconds = in.mtimeSeconds();
    n.mtimeNanos = in.mtimeNanos();
    n.rdev = in.rdev();
    n.size = in.size();
    n.layer = 0;
    for (byte[] x : parent.xattrNames(in.ino())) {
      n.xattrs.put(new String(x, StandardCharsets.ISO_8859_1), parent.xattr(in.ino(), x));
    }
    if (in.isRegular()) {
      if (in.inline()) {
        byte[] d = parent.data(in.ino());
        n.inline = d != null ? d : new byte[0];
      } else {
        List<ChunkWriter.PendingChunk> cs = new ArrayList<>(in.chunkCount());
        for (int i = 0; i < in.chunkCount(); i++) {
          var loc = parent.chunk(in.ino(), i);
          ChunkWriter.PackSlot slot =
              packs.computeIfAbsent(
                  loc.pack(),
                  p -> {
                    ChunkWriter.PackSlot ps = new ChunkWriter.PackSlot();
                    ps.name = p;
                    return ps;
                  });
          cs.add(
              new ChunkWriter.PendingChunk(
                  loc.digest(),
                  slot,
                  loc.offset(),
                  loc.storedLength(),
                  loc.plainLength(),
                  loc.codec()));
        }
        n.chunks = cs;
      }
    } else if (in.isSymlink()) {
      n.symlinkTarget = parent.data(in.ino());
    }
  }

  /**
   * Applies an entry of a layer that is a kernel overlayfs upper directory (an image build's step):
   * a 0:0 character device is a whiteout, a directory marked {@code trusted.overlay.opaque=y}
   * replaces what was there (the mark itself is not kept).
   */
  void applyOverlay(int layer, TarEntry e, InputStream content, String source) throws IOException {
    List<String> parts = split(e.name(), source, e.name());
    if (!parts.isEmpty()
        && e.type() == TarEntry.CHAR_DEVICE
        && e.devMajor() == 0
        && e.devMinor() == 0) {
      Node dir = find(parts.subList(0, parts.size() - 1));
      if (dir != null && dir.isDir()) {
        whiteout(dir, parts.get(parts.size() - 1), layer);
      }
      return;
    }
    byte[] opaque = e.xattrs().get(OVERLAY_OPAQUE);
    if (e.type() == TarEntry.DIRECTORY && opaque != null && new String(opaque).startsWith("y")) {
      Node existing = parts.isEmpty() ? root : find(parts);
      if (existing != null && existing.isDir()) {
        purgeLower(existing, layer);
      }
    }
    // overlayfs's own attributes (opaque, origin, impure, ...) are its bookkeeping, not the file's
    TarEntry own = e;
    for (String x : e.xattrs().keySet()) {
      if (x.startsWith(OVERLAY_XATTRS)) {
        own = own.withoutXattr(x);
      }
    }
    apply(layer, own, content, source);
  }

  static final String OVERLAY_XATTRS = "trusted.overlay.";
  static final String OVERLAY_OPAQUE = OVERLAY_XATTRS + "opaque";

  void apply(int layer, TarEntry e, InputStream content, String source) throws IOException {
    List<String> parts = split(e.name(), source, e.name());
    if (parts.isEmpty()) {
      if (e.type() == TarEntry.DIRECTORY) {
        checkXattrs(e, source);
        setAttrs(root, e, layer);
      }
      return;
    }
    String base = parts.get(parts.size() - 1);
    if (base.startsWith(WHITEOUT)) {
      // A whiteout hides something in an existing directory; under a path that is not a
      // directory (umoci writes dir/.wh.x after replacing dir by a symlink) it hides nothing.
      Node dir = find(parts.subList(0, parts.size() - 1));
      if (dir == null || !dir.isDir()) {
        return;
      }
      if (base.equals(OPAQUE)) {
        purgeLower(dir, layer);
        return;
      }
      if (base.startsWith(WHITEOUT + WHITEOUT)) {
        return; // other AUFS metadata (.wh..wh.plnk and friends): not part of the tree
      }
      whiteout(dir, base.substring(WHITEOUT.length()), layer);
      return;
    }
    Node parent = parentOf(parts, layer);
    if (base.length() > 255) {
      throw new ImportException(source, e.name(), "name longer than 255 bytes");
    }
    Node existing = parent.children.get(base);
    if (e.type() == TarEntry.DIRECTORY && existing != null && existing.isDir()) {
      checkXattrs(e, source);
      setAttrs(existing, e, layer);
      return;
    }
    Node node;
    switch (e.type()) {
      case TarEntry.HARDLINK -> {
        List<String> target = split(e.linkName(), source, e.name());
        Node t = find(target);
        if (t == null || t.isDir()) {
          throw new ImportException(
              source,
              e.name(),
              "hardlink to "
                  + (t == null ? "missing target" : "a directory")
                  + " '"
                  + e.linkName()
                  + "'");
        }
        t.layer = Math.max(t.layer, layer);
        parent.children.put(base, t);
        return;
      }
      case TarEntry.DIRECTORY -> node = Node.directory(0, layer);
      case TarEntry.REGULAR -> {
        node = new Node();
        node.mode = Node.S_IFREG;
        chunks.write(node, content, e.size(), source, e.name());
      }
      case TarEntry.SYMLINK -> {
        node = new Node();
        node.mode = Node.S_IFLNK;
        node.symlinkTarget = e.linkName().getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        if (node.symlinkTarget.length > MAX_SYMLINK) {
          throw new ImportException(
              source,
              e.name(),
              "symlink target of "
                  + node.symlinkTarget.length
                  + " bytes; Linux allows "
                  + MAX_SYMLINK);
        }
        node.size = node.symlinkTarget.length;
      }
      case TarEntry.CHAR_DEVICE, TarEntry.BLOCK_DEVICE -> {
        node = new Node();
        node.mode = e.type() == TarEntry.CHAR_DEVICE ? Node.S_IFCHR : Node.S_IFBLK;
        node.rdev = Node.makedev(e.devMajor(), e.devMinor());
      }
      case TarEntry.FIFO -> {
        node = new Node();
        node.mode = Node.S_IFIFO;
      }
      default -> throw new ImportException(source, e.name(), "unsupported entry type " + e.type());
    }
    checkXattrs(e, source);
    setAttrs(node, e, layer);
    parent.children.put(base, node);
  }

  /**
   * Refuses what Linux could not hand back through getxattr: names over 255 bytes, values over 64
   * KiB.
   */
  private static void checkXattrs(TarEntry e, String source) throws ImportException {
    for (var x : e.xattrs().entrySet()) {
      int name = x.getKey().length(); // one char per byte
      if (name == 0 || name > MAX_XATTR_NAME) {
        throw new ImportException(
            source,
            e.name(),
            "extended attribute name of " + name + " bytes; Linux allows 1 to " + MAX_XATTR_NAME);
      }
      if (x.getValue().length > MAX_XATTR_VALUE) {
        throw new ImportException(
            source,
            e.name(),
            "extended attribute "
                + x.getKey()
                + " of "
                + x.getValue().length
                + " bytes; Linux allows "
                + MAX_XATTR_VALUE);
      }
    }
  }

  /**
   * Whether the tree is itself a docker-save or OCI archive: what a compressed image archive looks
   * like when it is read as a rootfs tarball.
   */
  boolean looksLikeImageArchive() {
    var top = root.children;
    if (top.containsKey("oci-layout") && top.containsKey("index.json")) {
      return true;
    }
    if (top.containsKey("manifest.json")) {
      for (Node n : top.values()) {
        if (n.isDir() && n.children.containsKey("layer.tar")) {
          return true;
        }
      }
    }
    return false;
  }

  /** Hides {@code name} as lower layers left it; what this layer wrote there stays. */
  private static void whiteout(Node dir, String name, int layer) {
    Node victim = dir.children.get(name);
    if (victim == null) {
      return;
    }
    if (victim.layer < layer) {
      dir.children.remove(name);
    } else {
      purgeLower(victim, layer);
    }
  }

  private static void setAttrs(Node n, TarEntry e, int layer) {
    // a symlink's permission bits are 0777 on Linux whatever the archive says (as unpacked)
    n.mode =
        (n.mode & Node.S_IFMT) | ((n.mode & Node.S_IFMT) == Node.S_IFLNK ? 0777 : e.mode() & 07777);
    n.uid = e.uid();
    n.gid = e.gid();
    n.mtimeSeconds = e.mtimeSeconds();
    n.mtimeNanos = e.mtimeNanos();
    n.xattrs = new java.util.LinkedHashMap<>(e.xattrs());
    n.layer = layer;
  }

  /**
   * Removes, below {@code dir}, everything that layers before {@code layer} wrote. Iterative: a
   * tree may be far deeper than the Java stack.
   */
  private static void purgeLower(Node dir, int layer) {
    ArrayDeque<Node> todo = new ArrayDeque<>();
    todo.push(dir);
    while (!todo.isEmpty()) {
      Node d = todo.pop();
      if (!d.isDir()) {
        continue;
      }
      Iterator<Map.Entry<String, Node>> it = d.children.entrySet().iterator();
      while (it.hasNext()) {
        Node child = it.next().getValue();
        if (child.layer < layer) {
          it.remove();
        } else {
          todo.push(child);
        }
      }
    }
  }

  private Node parentOf(List<String> parts, int layer) {
    Node dir = root;
    for (int i = 0; i < parts.size() - 1; i++) {
      String p = parts.get(i);
      Node next = dir.children.get(p);
      if (next == null || !next.isDir()) {
        next = Node.directory(0755, layer);
        dir.children.put(p, next);
      }
      dir = next;
    }
    return dir;
  }

  private Node find(List<String> parts) {
    Node n = root;
    for (String p : parts) {
      if (!n.isDir()) {
        return null;
      }
      n = n.children.get(p);
      if (n == null) {
        return null;
      }
    }
    return n;
  }

  /** Splits a tar path into components; refuses absolute paths and any '..'. */
  static List<String> split(String path, String source, String entry) throws ImportException {
    if (path.startsWith("/")) {
      throw new ImportException(
          source, entry, "absolute path '" + path + "' would escape the image root");
    }
    List<String> out = new ArrayList<>();
    for (String p : path.split("/")) {
      if (p.isEmpty() || p.equals(".")) {
        continue;
      }
      if (p.equals("..")) {
        throw new ImportException(
            source, entry, "path '" + path + "' contains '..' and would escape the image root");
      }
      out.add(p);
    }
    return out;
  }

  /**
   * Gives every node an inode number (root 1, then depth first in name order, one number per
   * hardlinked node) and its link count. Returns the nodes in inode order.
   */
  List<Node> number() {
    List<Node> order = new ArrayList<>();
    IdentityHashMap<Node, Boolean> seen = new IdentityHashMap<>();
    root.nlink = 0;
    // Pre-order with an explicit stack (children pushed in reverse, so popped in name order):
    // the same numbering as a recursive walk, at any depth.
    ArrayDeque<Node> todo = new ArrayDeque<>();
    todo.push(root);
    while (!todo.isEmpty()) {
      Node n = todo.pop();
      if (seen.put(n, Boolean.TRUE) != null) {
        n.nlink++;
        continue;
      }
      n.ino = order.size() + 1;
      order.add(n);
      if (n.isDir()) {
        int subdirs = 0;
        for (Node c : n.children.values()) {
          if (c.isDir()) {
            subdirs++;
          }
        }
        n.nlink = 2 + subdirs;
        for (Node c : n.children.descendingMap().values()) {
          todo.push(c);
        }
      } else {
        n.nlink = 1;
      }
    }
    return order;
  }
}
