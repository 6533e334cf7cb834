"""Prints one line per entry of a tree, everything casfs must reproduce, for diffing two trees.

Paths are bytes (hex-escaped where not printable), so names that are not UTF-8 compare exactly.
Hardlinks are shown by group: every path of a hardlinked inode names the first path of its group.
Directory sizes are left out (they are a property of the host filesystem); so is atime/ctime.
Usage: tree-manifest.py ROOT
"""
import hashlib
import os
import stat
import sys


def show(b):
    return "".join(chr(c) if 33 <= c < 127 and c != 92 else "\\x%02x" % c for c in b)


def xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ""
    out = []
    for n in sorted(names):
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
        except OSError as e:
            v = b"<error %d>" % e.errno
        out.append("%s=%s" % (n, v.hex()))
    return ",".join(out)


def main(root):
    root = os.fsencode(root)
    groups = {}
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames) + ([] if dirpath != root else [b""]):
            path = os.path.join(dirpath, name) if name else dirpath
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            extra = ""
            if stat.S_ISREG(kind):
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                extra = "size=%d sha256=%s" % (st.st_size, h.hexdigest()[:16])
                key = (st.st_dev, st.st_ino)
                first = groups.setdefault(key, rel)
                extra += " nlink=%d group=%s" % (st.st_nlink, show(first))
            elif stat.S_ISLNK(kind):
                extra = "target=%s" % show(os.readlink(path))
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                extra = "dev=%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
            elif stat.S_ISDIR(kind):
                extra = "nlink=%d" % st.st_nlink
            lines.append("%s type=%o perm=%04o uid=%d gid=%d mtime=%d %s xattrs=%s" % (
                show(rel), kind >> 12, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                int(st.st_mtime), extra, xattrs(path)))
    for l in sorted(lines):
        print(l)


if __name__ == "__main__":
    main(sys.argv[1])
