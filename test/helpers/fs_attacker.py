"""A hostile workload for the agent's file-delivery tests, run as an unprivileged uid.

Until the stop file appears it keeps attacking every version directory in the output directory:
- it moves a version's jwt directory away and puts in its place a symlink to a file the agent must
  never touch, a FIFO (an open of it blocks), or a symlink to a tree the agent must never remove;
- it swaps whole old version directories for symlinks to that tree, racing their removal.
It prints `ready` once it runs, and at the end how many of its moves the file system allowed; the test asserts what the agent did.
"""
import os
import sys

out, victim_file, victim_dir, stop = sys.argv[1:5]
allowed = 0
n = 0
print("ready", flush=True)
while not os.path.exists(stop):
    try:
        names = os.listdir(out)
    except OSError:
        continue
    try:
        live = os.readlink(os.path.join(out, "..data"))
    except OSError:
        live = None
    for name in names:
        if not name.startswith("..2"):
            continue
        version = os.path.join(out, name)
        if os.path.islink(version):
            continue
        n += 1
        jwt = os.path.join(version, "jwt")
        try:
            os.rename(jwt, os.path.join(version, ".moved%d" % n))
            if n % 3 == 0:
                os.symlink(victim_file, jwt)
            elif n % 3 == 1:
                os.mkfifo(jwt)
            else:
                os.symlink(victim_dir, jwt)
            allowed += 1
        except OSError:
            pass
        if name != live:
            try:
                os.rename(version, os.path.join(out, "..2moved%d" % n))
                os.symlink(victim_dir, version)
                allowed += 1
            except OSError:
                pass
print(allowed, flush=True)
