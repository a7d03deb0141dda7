"""A real FHIR R4 engine for the tests: Medplum's FHIR router and in-memory repository
(``tests/fhir_engine/server.mjs``, installed from the npm registry by ``make test`` with the
lock file beside it), on 127.0.0.1 at a port of its own choosing. It validates every resource
it receives against the R4 StructureDefinitions before storing it (Medplum's validateResource)
and resolves conditional references as an R4 transaction must.

``Engine`` starts it and stops it; ``search``/``read`` look at what it holds; ``validate`` checks
any bundle's resources without storing them; ``reset`` empties it."""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "fhir_engine"
INSTALL_HINT = "run `make fhir-engine` (npm ci in tests/fhir_engine), as `make test` does"


def available() -> str | None:
    """Why the engine cannot start here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (make test installs it with the Debian packages)"
    if not (HERE / "node_modules" / "@medplum" / "fhir-router").is_dir():
        return f"the FHIR engine is not installed: {INSTALL_HINT}"
    return None


class Engine:
    def __init__(self, *args: str) -> None:
        why = available()
        if why is not None:
            raise RuntimeError(why)
        # Its log goes to a file: a pipe nobody reads would fill and stop the server mid-request.
        self.log = tempfile.TemporaryFile()    # noqa: SIM115  (closed by close())
        self.proc = subprocess.Popen(["node", str(HERE / "server.mjs"), *args], cwd=HERE, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        line = b""
        while b"\n" not in line:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            if not ready or self.proc.poll() is not None:
                self.close()
                err = self.stderr()
                raise RuntimeError(f"the FHIR engine did not start: {err[-2000:]}")
            line += self.proc.stdout.read1(4096)  # type: ignore[attr-defined]
        self.port = int(line.split()[1])
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.root}/fhir"

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()          # the server exits when its stdin ends
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def stderr(self) -> str:
        """What the server wrote to its standard error so far (its last 2,000 characters)."""
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-2000:]

    def __del__(self) -> None:
        self.log.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.root + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def reset(self) -> None:
        self._call("POST", "/_reset", {})

    def validate(self, doc: dict[str, Any]) -> list[str]:
        """Every error Medplum's validateResource finds in the bundle's resources (or one resource)."""
        out = self._call("POST", "/_validate", doc)
        return [str(i.get("diagnostics")) for i in out.get("issue", [])]

    def load_definitions(self, definitions: list[dict[str, Any]]) -> list[str]:
        """Load StructureDefinitions into the engine's validator: its complaints, or []."""
        try:
            self._call("POST", "/_index", definitions)
        except urllib.error.HTTPError as e:
            return [str(i.get("diagnostics")) for i in json.loads(e.read()).get("issue", [])]
        return []

    def search(self, kind: str, token: str | None = None, **params: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({**params, "_count": "1000"})
        found = self._call("GET", f"/fhir/{kind}?{q}", token=token)
        return [e["resource"] for e in found.get("entry", [])]

    def read(self, reference: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", f"/fhir/{reference}")
        return out
