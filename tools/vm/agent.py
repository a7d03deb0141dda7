#!/usr/bin/python3
"""The guest's end of `make vm-test`'s control channel (tools/vm_test.py).

Runs as root in the VM, on the virtio serial port named "agent": reads one JSON request a
line ({"id", "sh", "timeout"}), runs it with bash, answers with one JSON line ({"id", "rc",
"out", "err"}). It says "ready" once when it starts, so the host knows the guest is up. Part
of the test image only, never of a unit.
"""

import json
import os
import subprocess
import time

PORT = "/dev/virtio-ports/agent"


def main() -> None:
    while not os.path.exists(PORT):
        time.sleep(0.2)
    fd = os.open(PORT, os.O_RDWR)
    rd = os.fdopen(fd, "rb", buffering=0)

    def send(obj: dict[str, object]) -> None:
        data = (json.dumps(obj) + "\n").encode()
        while data:
            data = data[os.write(fd, data):]

    send({"ready": True, "boot_s": time.clock_gettime(time.CLOCK_BOOTTIME)})
    buf = b""
    while True:
        chunk = rd.read(65536)
        if not chunk:
            time.sleep(0.1)
            continue
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if not line.strip():
                continue
            req = json.loads(line)
            try:
                r = subprocess.run(["bash", "-c", req["sh"]], capture_output=True, timeout=req.get("timeout", 300),
                                   stdin=subprocess.DEVNULL)
                out = {"id": req["id"], "rc": r.returncode, "out": r.stdout.decode("utf-8", "replace"),
                       "err": r.stderr.decode("utf-8", "replace")}
            except subprocess.TimeoutExpired as e:
                out = {"id": req["id"], "rc": -1, "out": (e.stdout or b"").decode("utf-8", "replace"),
                       "err": f"timed out after {e.timeout} s"}
            send(out)


if __name__ == "__main__":
    main()
