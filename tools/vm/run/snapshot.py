"""Prints, as JSON, every file the installer claims to change (tools/install.sh and
docs/install.md): each path with its content's hash, its link target or "dir", and its
owner and mode. make vm-test compares the snapshots before an install and after --uninstall."""

import hashlib
import json
import os
import sys

CLAIMED = ["/boot/firmware", "/etc/modules", "/etc/systemd/system", "/etc/udev/rules.d", "/opt/bedside"]


def describe(path: str) -> str:
    st = os.lstat(path)
    if os.path.islink(path):
        return "-> " + os.readlink(path)
    if os.path.isdir(path):
        return f"dir {st.st_uid}:{st.st_gid} {st.st_mode & 0o7777:o}"
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    return f"file {digest} {st.st_uid}:{st.st_gid} {st.st_mode & 0o7777:o}"


def main() -> None:
    out = {}
    for top in sys.argv[1:] or CLAIMED:
        if not os.path.lexists(top):
            out[top] = "absent"
            continue
        out[top] = describe(top)
        if os.path.isdir(top) and not os.path.islink(top):
            for dirpath, dirs, files in os.walk(top):
                for name in dirs + files:
                    p = os.path.join(dirpath, name)
                    out[p] = describe(p)
    print(json.dumps(out, sort_keys=True))


main()
