"""Structure-aware fuzzers for every reader of a ward USB stick's files: the authorisation
(``Bedside/authorisation.json``, under a ward secret or signed by the ward authority), the ward
settings (``Bedside/settings.json``, both kinds) and a software update's manifest
(``Bedside/update/manifest.json``).

Each example starts from a valid file the ward's own tools write, changes it at the structural
level (tests/rigs/hostile_json.py: a field dropped, retyped, added or changed; nesting past the
parser's limit, a key twice, bytes that are not UTF-8, ``NaN``, a number of thousands of digits,
a cut, padding past the limits), often signs it again (so that the checks after the signature
are reached too: someone holding the ward secret, or a stolen key), puts it on a stick folder
and reads it the way the export does. What must hold, for every example:

* **a named refusal or an acceptance, nothing else**: the reader gives the document's meaning
  or raises its own refusal (``StickProblem``, ``SettingsRefused``, ``UpdateRefused``) with a
  reason the journal records (``export_failed``'s, ``settings_refused``'s and
  ``software_update_refused``'s ``reason``); never another exception;
* **the budget**: at most the file's limit plus one byte is read from the stick (counted), one
  read, whatever the file's size; memory at its peak within 64 times the limit (tracemalloc);
  the work is the JSON parser's and one canonical re-encoding, both linear in the bytes read;
* **what a refused file claims proves nothing**: ``claimed_version`` of a refused manifest is a
  short string or None.

``make test`` runs a fixed set of examples; ``make fuzz`` draws fresh ones, twenty times as many.
"""

from __future__ import annotations

import os
import random
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedside import secret
from bedside.core.config import Config
from bedside.stick import auth, settings, update
from bedside.stick import files as stick_files
from bedside.trust import keyring, keys, signed
from tests.conftest import DATA, PROFILE, budget
from tests.rigs import hostile_json
from tests.rigs.trust_rig import resigned

LONG = pytest.mark.timeout(0 if PROFILE == "long" else 300)

KEY = secret.stick_key("correct horse battery")
MADE = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MEMORY_FACTOR = 64


@dataclass
class Kind:
    """One file a stick carries: how the ward's tools make it, sign it again, and how a unit reads it."""

    name: str
    where: tuple[str, ...]                       # its path on the stick
    limit: int                                   # the most its reader reads
    make: Callable[[], dict[str, Any]]
    sign: Callable[[dict[str, Any]], dict[str, Any]]     # the document signed again over what it holds
    read: Callable[[int], bytes | None]          # from the stick's root folder
    check: Callable[[bytes | None, Path], object]    # the unit's check: its meaning, or its refusal
    refusal: type[Exception]
    reasons: frozenset[str]


class Ring:
    """The ward's keys, made once: an authority and a release key, pinned."""

    def __init__(self, folder: Path) -> None:
        self.authority = keys.generate("ward", "Ward 7 authority")
        self.release = keys.generate("release", "Bedside releases")
        folder.mkdir(parents=True, exist_ok=True)
        keys_dir = folder / "keys"
        self.ring = keyring.pin(keys_dir, "Ward 7", [
            keyring.PinnedKey("ward", self.authority.id, self.authority.public, self.authority.name),
            keyring.PinnedKey("release", self.release.id, self.release.public, self.release.name)])


def _resign_legacy_auth(doc: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in doc.items() if k != "mac"}
    try:
        return {**body, "mac": auth._mac(KEY, body)}
    except (TypeError, ValueError):
        return doc


def _resign_legacy_settings(doc: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in doc.items() if k != "mac"}
    try:
        return {**body, "mac": settings._mac(KEY, body)}
    except (TypeError, ValueError):
        return doc


def _read_manifest(root: int) -> bytes | None:
    try:
        folder = os.open(f"{stick_files.FOLDER}/{update.UPDATE_DIR}", os.O_RDONLY | os.O_DIRECTORY, dir_fd=root)
    except FileNotFoundError:
        return None
    try:
        return update.read_bundle(folder)[0]
    finally:
        os.close(folder)


def _kinds(r: Ring) -> dict[str, Kind]:
    week_toml = (DATA / "week.toml").read_text()
    unit = Config()
    settings_reasons = frozenset({settings.MALFORMED, settings.OTHER_WARD, settings.BAD_SIGNATURE, settings.INVALID,
                                  settings.OLDER, settings.IMPLAUSIBLE})
    update_reasons = frozenset({update.MALFORMED, update.UNSIGNED, update.BAD_SIGNATURE, update.DOWNGRADE,
                                update.IMPLAUSIBLE, update.TOO_LARGE})
    auth_where = (stick_files.FOLDER, auth.AUTH_FILE)
    settings_where = (stick_files.FOLDER, settings.SETTINGS_FILE)
    wheels = {"bedside-0.2.0-py3-none-any.whl": {"sha256": "ab" * 32, "size": 1000},
              "dep-1.0-py3-none-any.whl": {"sha256": "cd" * 32, "size": 20}}
    manifest_body = {"version": "0.2.0", "counter": 1, "wheels": wheels, "made": MADE.isoformat(),
                     "issued": MADE.isoformat()}
    return {k.name: k for k in [
        Kind("authorisation, ward secret", auth_where, auth.MAX_AUTH_BYTES,
             lambda: auth.authorisation(KEY, MADE, "Ward 7 stick 2"), _resign_legacy_auth,
             auth.read_authorisation, lambda raw, data: auth.check(raw, KEY),
             stick_files.StickProblem, stick_files.REFUSALS),
        Kind("authorisation, signed", auth_where, auth.MAX_AUTH_BYTES,
             lambda: signed.to_json(r.authority.sign(auth.STICK_KIND, auth.signed_body(MADE, "stick 1", "Ward 7"))),
             resigned(r.authority), auth.read_authorisation, lambda raw, data: auth.check_signed(raw, r.ring),
             stick_files.StickProblem, stick_files.REFUSALS),
        Kind("settings, ward secret", settings_where, settings.MAX_BYTES,
             lambda: settings.make(KEY, MADE, config_text=week_toml), _resign_legacy_settings, settings.read,
             lambda raw, data: settings.check(raw or b"", KEY, unit, data),
             settings.SettingsRefused, settings_reasons),
        Kind("settings, signed", settings_where, settings.MAX_BYTES,
             lambda: signed.to_json(r.authority.sign(settings.KIND, settings.body_signed(
                 1, MADE, config_text=week_toml, revoked={"sticks": ["ab" * 16]}))),
             resigned(r.authority), settings.read,
             lambda raw, data: settings.check_signed(raw or b"", r.ring, unit, data, NOW),
             settings.SettingsRefused, settings_reasons),
        Kind("update manifest", (stick_files.FOLDER, update.UPDATE_DIR, update.MANIFEST), update.MAX_MANIFEST_BYTES,
             lambda: signed.to_json(r.release.sign(update.KIND, manifest_body)), resigned(r.release),
             _read_manifest, lambda raw, data: update.check_manifest(raw, r.ring, 0, NOW),
             update.UpdateRefused, update_reasons),
    ]}


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Kind]:
    return _kinds(Ring(tmp_path_factory.mktemp("ward")))


@contextmanager
def counted_reads() -> Iterator[list[int]]:
    """Every ``os.read`` while in force, by the bytes it asked for."""
    asked: list[int] = []
    real = os.read

    def read(fd: int, n: int) -> bytes:
        asked.append(n)
        return real(fd, n)

    os.read = read
    try:
        yield asked
    finally:
        os.read = real


def on_stick(root: Path, where: tuple[str, ...], raw: bytes) -> int:
    path = root.joinpath(*where)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY)


def read_and_check(kind: Kind, root: Path, data: Path, raw: bytes) -> tuple[object, list[int], int]:
    """What the unit makes of ``raw`` on a stick: the check's result or its refusal, the reads
    made of the stick, and the peak memory of reading and checking it."""
    fd = on_stick(root, kind.where, raw)
    tracemalloc.start()
    try:
        with counted_reads() as asked:
            got = kind.read(fd)
        try:
            result: object = kind.check(got, data)
        except kind.refusal as e:
            result = e
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        os.close(fd)
    return result, asked, peak


def check_example(kind: Kind, result: object, asked: list[int], peak: int, raw: bytes) -> None:
    if isinstance(result, Exception):
        reason = getattr(result, "reason", None)
        assert reason in kind.reasons, (kind.name, reason, str(result))
        assert str(result)                                     # a sentence for people
    assert asked == [kind.limit + 1], asked                   # one bounded read, whatever the file's size
    assert peak <= MEMORY_FACTOR * kind.limit, (peak, len(raw))
    if kind.name == "update manifest":
        claimed = update.claimed_version(raw)
        assert claimed is None or (isinstance(claimed, str) and len(claimed) <= 40)


def test_every_valid_file_is_accepted(kinds: dict[str, Kind], tmp_path: Path) -> None:
    for n, kind in enumerate(kinds.values()):
        raw = hostile_json.dumps(kind.make())
        result, asked, peak = read_and_check(kind, tmp_path / f"stick{n}", tmp_path / f"data{n}", raw)
        assert not isinstance(result, Exception), (kind.name, result)
        check_example(kind, result, asked, peak, raw)


@LONG
@given(which=st.integers(0, 4), seed=st.integers(0, 2**32 - 1), rounds=st.integers(1, 3),
       resign=st.booleans(), on_bytes=st.booleans())
@budget(100)
def test_fuzz_stick_files(kinds: dict[str, Kind], tmp_path_factory: pytest.TempPathFactory, which: int, seed: int,
                          rounds: int, resign: bool, on_bytes: bool) -> None:
    kind = list(kinds.values())[which]
    rng = random.Random(seed)
    doc = kind.make()
    names = []
    for _ in range(rounds):
        name = rng.choice(sorted(hostile_json.DOC_MUTATORS))
        names.append(name)
        if kind.name.endswith(("signed", "manifest")) and rng.random() < 0.7 and isinstance(doc.get("body"), dict):
            doc = {**doc, "body": hostile_json.DOC_MUTATORS[name](rng, doc["body"])}   # inside what is signed
        else:
            doc = hostile_json.DOC_MUTATORS[name](rng, doc)
    if resign:
        doc = kind.sign(doc)
    raw = hostile_json.encoded(doc)
    if on_bytes:
        name = rng.choice(sorted(hostile_json.RAW_MUTATORS))
        names.append(name)
        raw = hostile_json.RAW_MUTATORS[name](rng, raw)
    d = tmp_path_factory.mktemp("f")
    result, asked, peak = read_and_check(kind, d / "stick", d / "data", raw)
    check_example(kind, result, asked, peak, raw)
    if len(raw) > kind.limit:
        assert isinstance(result, kind.refusal), (kind.name, names)     # too large: never read on


@pytest.mark.timeout(30)
@pytest.mark.parametrize("what", ["fifo", "folder", "link", "huge"])
@pytest.mark.parametrize("which", [0, 2, 4])
def test_a_file_that_is_not_a_small_regular_file_is_refused_at_once(
        kinds: dict[str, Kind], tmp_path: Path, what: str, which: int) -> None:
    """In the file's place a fifo (never waited on), a folder, a link (never followed) or a
    1 GiB file (one bounded read): a named refusal, each from a single read or none."""
    kind = list(kinds.values())[which]
    root = tmp_path / "stick"
    path = root.joinpath(*kind.where)
    path.parent.mkdir(parents=True)
    if what == "fifo":
        os.mkfifo(path)
    elif what == "folder":
        path.mkdir()
    elif what == "link":
        (tmp_path / "elsewhere.json").write_bytes(hostile_json.dumps(kind.make()))
        path.symlink_to(tmp_path / "elsewhere.json")
    else:
        with path.open("wb") as f:
            f.truncate(1 << 30)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with counted_reads() as asked:
            got = kind.read(fd)
    finally:
        os.close(fd)
    assert got == b""
    assert sum(asked) <= kind.limit + 1
    with pytest.raises(kind.refusal) as e:
        kind.check(got, tmp_path / "data")
    assert e.value.reason in kind.reasons       # type: ignore[attr-defined]


@pytest.mark.parametrize("which", [0, 1, 2, 3, 4])
def test_nesting_past_the_parsers_limit_is_a_named_refusal(kinds: dict[str, Kind], tmp_path: Path,
                                                           which: int) -> None:
    """Each of these was a RecursionError (a traceback, the export cut off) before: the
    authorisation signed by the ward authority, both kinds of ward settings, an update's manifest."""
    kind = list(kinds.values())[which]
    raw = b"[" * (kind.limit - 10)
    result, asked, peak = read_and_check(kind, tmp_path / "stick", tmp_path / "data", raw)
    assert isinstance(result, kind.refusal)
    check_example(kind, result, asked, peak, raw)


# --- the defects the fuzzer found, each as it was found ------------------------------------------

def test_a_key_id_or_mac_outside_ascii_is_refused_not_a_type_error(kinds: dict[str, Kind], tmp_path: Path) -> None:
    """Constant-time comparison refused text outside ASCII with a TypeError: a stick whose
    ``ward_key`` or ``mac`` held one stopped the export (no key needed to make one)."""
    for n, name in enumerate(["authorisation, ward secret", "settings, ward secret"]):
        kind = kinds[name]
        for field in ("ward_key", "mac"):
            doc = {**kind.make(), field: "é" * 32}
            result, asked, peak = read_and_check(kind, tmp_path / f"s{n}{field}", tmp_path / "data",
                                                 hostile_json.dumps(doc))
            assert isinstance(result, kind.refusal), (name, field, result)
            check_example(kind, result, asked, peak, hostile_json.dumps(doc))


@pytest.mark.parametrize("which", [0, 1, 2, 3, 4])
def test_a_lone_surrogate_is_refused_not_an_encoding_error(kinds: dict[str, Kind], tmp_path: Path, which: int) -> None:
    """A ``\\ud800`` escape parses to text with no UTF-8: computing the MAC or the signed message
    over it raised UnicodeEncodeError (signed settings, ward settings, an update's manifest)."""
    kind = list(kinds.values())[which]
    doc = kind.make()
    raw = hostile_json.dumps(kind.sign(doc)).replace(b'"20', b'"\\ud80020', 1)
    assert b"\\ud800" in raw
    result, asked, peak = read_and_check(kind, tmp_path / "stick", tmp_path / "data", raw)
    assert isinstance(result, kind.refusal), result
    check_example(kind, result, asked, peak, raw)


def test_signed_settings_whose_revocations_are_not_lists_are_read_as_none(kinds: dict[str, Kind],
                                                                          tmp_path: Path) -> None:
    """Validly signed settings whose ``revoked`` lists were ``null``: a TypeError before."""
    kind = kinds["settings, signed"]
    doc = kind.make()
    doc = kind.sign({**doc, "body": {**doc["body"], "revoked": {"sticks": None, "laptops": 7}}})
    result, asked, peak = read_and_check(kind, tmp_path / "stick", tmp_path / "data", hostile_json.dumps(doc))
    assert isinstance(result, settings.Offer) and result.revoked == {k: [] for k in settings.REVOCABLE}
    check_example(kind, result, asked, peak, hostile_json.dumps(doc))


@pytest.mark.parametrize(("given", "seconds"), [
    (None, 60.0), (0, 60.0), (30, 30.0), (5, 10.0), (1e9, 120.0), (float("nan"), 60.0), (float("inf"), 60.0),
    (float("-inf"), 60.0), ("45", 45.0), ("nan", 60.0), ("soon", 60.0), ([1], 60.0), ({"a": 1}, 60.0),
    (10**400, 60.0)])
def test_a_confirmation_on_the_stick_channel_waits_a_finite_bounded_time(given: object, seconds: float) -> None:
    """The channel's ``confirm`` request: a NaN or infinity (JSON's ``NaN``, which Python's
    parser takes) reached the loop as the confirmation's deadline; now 10–120 s, else 60."""
    from bedside.stick.channel import confirm_seconds

    assert confirm_seconds(given) == seconds


def test_an_answer_of_the_mount_service_nested_too_deeply_is_a_stopped_service_not_a_crash() -> None:
    """The export's side of the privileged mount service's pipe parsed its answers with
    ``json.loads``: nesting past the parser's limit was a RecursionError (the export cut off)."""
    import io

    from bedside.stick.export import ServiceMount

    mount = ServiceMount(io.BytesIO(b"[" * 60_000 + b"\n"), io.BytesIO())
    with pytest.raises(stick_files.StickProblem) as e:
        mount._ask("mount")
    assert e.value.reason == stick_files.REMOVED
