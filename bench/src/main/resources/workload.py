"""One filesystem workload over a tree; prints the seconds it took (interpreter start excluded).

workload.py stat  ROOT LIST   lstat every path in LIST
workload.py small ROOT LIST   open, read whole, close every path in LIST
workload.py seq   ROOT PATH   read PATH sequentially in 1 MiB reads
"""
import os
import sys
import time

kind, root = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if kind in ("stat", "small"):
    with open(sys.argv[3]) as f:
        paths = [os.path.join(root, line.rstrip("\n")) for line in f]
    t0 = time.perf_counter()
    if kind == "stat":
        for p in paths:
            os.lstat(p)
    else:
        for p in paths:
            with open(p, "rb") as fh:
                fh.read()
elif kind == "seq":
    buf = bytearray(1 << 20)
    total = 0
    with open(os.path.join(root, sys.argv[3]), "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            total += n
    if total != os.path.getsize(os.path.join(root, sys.argv[3])):
        sys.exit("short read")
else:
    sys.exit("unknown workload " + kind)
print("%.6f" % (time.perf_counter() - t0))
