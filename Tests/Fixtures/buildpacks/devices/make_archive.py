#!/usr/bin/env python3
"""Writes a hostile buildpack archive (issue 17): a CNB buildpack whose entries, all owned by
root, include a world-readable twin of /dev/zero (character device 1,5) and a setuid-root copy
of a program. Extracted as root they are created as the archive says; the build sandbox must
leave them inert. Usage: make_archive.py OUT.tgz PROGRAM"""
import io, sys, tarfile

BUILD = b"""#!/bin/sh
bp=$CNB_BUILDPACK_DIR
ls -ln "$bp/zero" "$bp/bin/euid"
if head -c 4 "$bp/zero" > /dev/null 2>&1; then echo "device: readable"; else echo "device: refused"; fi
"$bp/bin/euid"; echo "euid: $?"
"""

def add(t, name, data=b"", mode=0o755, kind=tarfile.REGTYPE, **extra):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.size = kind, mode, 0, 0, len(data)
    for k, v in extra.items():
        setattr(info, k, v)
    t.addfile(info, io.BytesIO(data) if data else None)

out, program = sys.argv[1], sys.argv[2]
with tarfile.open(out, "w:gz") as t:
    add(t, "buildpack.toml", b'api = "0.10"\n[buildpack]\nid = "tests/devices"\nversion = "0.0.1"\n', 0o644)
    add(t, "bin/detect", b"#!/bin/sh\nexit 0\n")
    add(t, "bin/build", BUILD)
    add(t, "bin/euid", open(program, "rb").read(), 0o4755)
    add(t, "zero", mode=0o666, kind=tarfile.CHRTYPE, devmajor=1, devminor=5)
