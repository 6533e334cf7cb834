#!/usr/bin/env bash
# Builds a real multi-layer OCI image with umoci that exercises every tree feature casfs must
# reproduce, plus the reference tree `umoci unpack` makes of it, and the same image as a
# docker-save archive, an OCI archive (skopeo) and a plain rootfs tarball.
#
#   make-image.sh OUT     -> OUT/layout (OCI layout, tag t), OUT/bundle/rootfs (reference),
#                            OUT/docker.tar, OUT/oci.tar, OUT/rootfs.tar.gz
# Needs root (devices, ownership, trusted.* xattrs), umoci, skopeo, python3, setfattr.
set -euo pipefail
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
rm -rf "$OUT"; mkdir -p "$OUT"; cd "$OUT"
umoci init --layout layout >/dev/null
umoci new --image layout:t >/dev/null
umoci config --image layout:t --config.env 'PATH=/usr/bin:/bin' --config.env 'GREETING=hello world' \
  --config.entrypoint /bin/sh --config.cmd -c --config.cmd 'echo hi' --config.workingdir /app \
  --config.user 1000:1000 --config.label org.example.kind=test >/dev/null
umoci unpack --image layout:t work >/dev/null
R=work/rootfs

# ---- layer 1: every kind of entry --------------------------------------------------------------
mkdir -p $R/app $R/etc $R/data $R/dev $R/links $R/names $R/many $R/modes $R/replace
echo "hello" > $R/app/hello.txt
: > $R/app/empty
head -c 4096 /dev/zero | tr '\0' 'a' > $R/app/inline-limit
head -c 4097 /dev/zero | tr '\0' 'b' > $R/app/just-over
python3 -c "import random,sys; random.seed(7); sys.stdout.buffer.write(random.randbytes(3*1048576+123))" > $R/data/random.bin
cp $R/data/random.bin $R/data/random-copy.bin          # same chunks twice: dedup within an image
python3 -c "import sys; sys.stdout.buffer.write((b'compressible line of text\n')*200000)" > $R/data/text.txt
echo "to be deleted" > $R/app/delete-me
mkdir -p $R/app/gone-dir/sub; echo x > $R/app/gone-dir/sub/f
echo "was a file" > $R/replace/file-to-dir
mkdir -p $R/replace/dir-to-symlink; echo y > $R/replace/dir-to-symlink/inner
ln -s hello.txt $R/replace/symlink-to-file
echo "old content" > $R/app/modified
# modes
echo s > $R/modes/setuid; chmod 4755 $R/modes/setuid
echo g > $R/modes/setgid; chmod 2755 $R/modes/setgid
mkdir $R/modes/sticky; chmod 1777 $R/modes/sticky
echo z > $R/modes/zero; chmod 000 $R/modes/zero
mkdir $R/modes/dir700; chmod 700 $R/modes/dir700
echo u > $R/modes/bigids; chown 2000000000:3000000000 $R/modes/bigids
echo o > $R/modes/owned; chown 1000:1000 $R/modes/owned
# symlinks
ln -s ../app/hello.txt $R/links/relative
ln -s /app/hello.txt $R/links/absolute
ln -s /no/such/target $R/links/dangling
ln -s "$(python3 -c "print('/'.join(['long-component-%03d' % i for i in range(60)]))")" $R/links/long
# hardlinks
echo "linked" > $R/links/hard1; ln $R/links/hard1 $R/links/hard2; ln $R/links/hard1 $R/app/hard3
# xattrs
setfattr -n user.comment -v "a user xattr" $R/app/hello.txt
setfattr -n user.binary -v 0x00ff10ee $R/app/hello.txt
setfattr -n trusted.skiff -v "trusted value" $R/app/hello.txt
setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 $R/modes/setuid
# devices and fifos
mknod $R/dev/null-like c 1 3
mknod $R/dev/block b 8 0
mknod $R/dev/bignum c 4000 1000000
mkfifo $R/dev/fifo
# names
echo u > "$R/names/héllo-wörld-世界"
echo l > "$R/names/$(python3 -c "print('n'*255)")"
echo b > "$R/names/$(printf 'not-utf8-\xff\xfe')"
echo s > "$R/names/with space and 'quote'"
# a big directory and a deep path
python3 - "$R/many" <<'PY'
import os, sys
for i in range(3000):
    with open(os.path.join(sys.argv[1], "f%05d" % i), "w") as f:
        f.write(str(i))
PY
d=$R/deep; for i in $(seq 1 50); do d=$d/l$i; done; mkdir -p "$d"; echo bottom > "$d/file"
# mtimes (after content, before repack)
touch -h -d '2001-02-03 04:05:06' $R/links/relative
touch -d '1999-12-31 23:59:59' $R/app/hello.txt
touch -d '2030-01-01 00:00:00' $R/data/text.txt
umoci repack --image layout:t work >/dev/null

# ---- layer 2: deletions, replacements, changes (umoci writes the whiteouts) --------------------
rm -rf work; umoci unpack --image layout:t work >/dev/null
rm $R/app/delete-me
rm -rf $R/app/gone-dir
rm $R/replace/file-to-dir; mkdir $R/replace/file-to-dir; echo now-a-dir > $R/replace/file-to-dir/inside
rm -rf $R/replace/dir-to-symlink; ln -s /app $R/replace/dir-to-symlink
rm $R/replace/symlink-to-file; echo "now a file" > $R/replace/symlink-to-file
echo "new content" > $R/app/modified
chmod 600 $R/app/just-over
mkdir -p $R/opaque/keep-not; echo lower > $R/opaque/keep-not/x; echo lower > $R/opaque/lower-file
mkdir -p $R/readd; echo lower > $R/readd/thing
umoci repack --image layout:t work >/dev/null

# ---- layer 3: hand-made tar for what tools rarely write (opaque dir, whiteout + re-add in one
# layer, two entries for one path) -----------------------------------------------------------------
python3 "$HERE/make-layer3.py" layer3.tar
umoci raw add-layer --image layout:t layer3.tar >/dev/null
rm -rf work

# ---- the reference and the other container formats --------------------------------------------
umoci unpack --image layout:t bundle >/dev/null
skopeo copy -q oci:layout:t docker-archive:docker.tar:skiff/test:t
skopeo copy -q oci:layout:t oci-archive:oci.tar:t
tar --create --gzip --file=rootfs.tar.gz --format=posix --numeric-owner --xattrs --xattrs-include='*' \
  --pax-option=delete=atime,delete=ctime --directory=bundle/rootfs .
echo "built $OUT"
