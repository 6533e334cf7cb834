"""Writes a layer tar exercising OCI whiteout rules that umoci repack never emits."""
import io
import sys
import tarfile


def add(t, name, data=None, kind=tarfile.REGTYPE, mode=0o644):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 1600000000
    if kind == tarfile.DIRTYPE:
        info.mode = 0o755
        t.addfile(info)
    else:
        payload = data.encode() if data is not None else b""
        info.size = len(payload)
        t.addfile(info, io.BytesIO(payload))


with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    # opaque directory: everything the lower layers put in opaque/ disappears; new-file stays
    add(t, "opaque", kind=tarfile.DIRTYPE)
    add(t, "opaque/new-file", "upper")
    add(t, "opaque/.wh..wh..opq")
    # whiteout and re-add in one layer, re-add listed first: the re-added entry must survive
    add(t, "readd", kind=tarfile.DIRTYPE)
    add(t, "readd/thing", "re-added")
    add(t, "readd/.wh.thing")
    # two entries for one path: the later one wins
    add(t, "app/twice", "first")
    add(t, "app/twice", "second and final")
    # whiteout of something that does not exist is harmless
    add(t, "app/.wh.never-existed")
