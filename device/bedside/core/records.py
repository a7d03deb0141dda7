"""The record of care's one vocabulary: every record type, what its ``data`` carries, the
outcomes that settle a session, and the envelope every record has.

Every writer and reader names a type through ``T`` (``Record(T.FAULT, data=...)``,
``r.type == T.PROMPT``), so a misspelled type is an error for mypy, not a record nobody
reads. ``TYPES`` says for each type when it is written, whether it is clinical, bookkeeping
or offline, and what each of its fields means; docs/records.md and the JSON Schema of an
export line (journal/record.schema.json) are generated from it (``markdown``,
``json_schema``; regenerate with ``python tools/records_doc.py``), and a test keeps both
current. The values are plain strings: a record's bytes do not depend on this module.

Pure: no clock, no files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final


class T:
    """The record types by name: ``T.PROMPT == "prompt"``."""

    # A patient's sessions (they carry ``session`` and ``due``)
    PROMPT: Final = "prompt"
    REPEAT: Final = "repeat"
    SNOOZE: Final = "snooze"
    PRESS: Final = "press"
    DONE: Final = "done"
    MISSED: Final = "missed"
    INTERRUPTED: Final = "interrupted"
    DEFERRED: Final = "deferred"
    PAUSED: Final = "paused"
    EXTRA: Final = "extra"
    # Nurses, episodes and downloads
    PAUSE: Final = "pause"
    RESUME: Final = "resume"
    ADMIT: Final = "admit"
    DISCHARGE: Final = "discharge"
    REFUSED: Final = "refused"
    EXPORT: Final = "export"
    EXPORT_REFUSED: Final = "export_refused"
    EXPORT_FAILED: Final = "export_failed"
    # The unit: runs, clock, parts
    START: Final = "start"
    STOP: Final = "stop"
    POWER_LOSS: Final = "power_loss"
    CLOCK_SET: Final = "clock_set"
    FAULT: Final = "fault"
    FAULT_CLEARED: Final = "fault_cleared"
    SELFTEST: Final = "selftest"
    # The serial link
    UNLOCK: Final = "unlock"
    UNLOCK_FAILED: Final = "unlock_failed"
    LOCKOUT: Final = "lockout"
    LOCKOUT_END: Final = "lockout_end"
    LOCK: Final = "lock"
    CHANGE_DECLINED: Final = "change_declined"
    # Keys, ward settings and software
    SEAL_KEY: Final = "seal_key"
    SECRET_SET: Final = "secret_set"
    KEYS_PINNED: Final = "keys_pinned"
    SETTINGS_APPLIED: Final = "settings_applied"
    CONFIG_CHANGED: Final = "config_changed"
    SECRET_CHANGED: Final = "secret_changed"
    SETTINGS_REFUSED: Final = "settings_refused"
    SOFTWARE_UPDATE: Final = "software_update"
    SOFTWARE_ROLLBACK: Final = "software_rollback"
    SOFTWARE_UPDATE_REFUSED: Final = "software_update_refused"
    SOFTWARE_UPDATE_FAILED: Final = "software_update_failed"
    # The journal's own upkeep
    SEAL: Final = "seal"
    VERIFIED: Final = "verified"
    PRUNED: Final = "pruned"
    FLOOD: Final = "flood"
    FLOOD_END: Final = "flood_end"


class Kind:
    """What a type is to its readers."""

    CLINICAL: Final = "clinical"        # what happened at the bed, to the unit or its settings
    BOOKKEEPING: Final = "bookkeeping"  # the journal's own upkeep: holds no session state
    OFFLINE: Final = "offline"          # only ever written with the daemon stopped (unit/offline.py)


KINDS: Final = {
    Kind.CLINICAL: "what happened at the bed, to the unit or to its settings: the record of care itself "
                   "(the daemon writes these; a stick export or a refused update may also be written with it stopped, "
                   "marked `offline: true`)",
    Kind.BOOKKEEPING: "the journal's own upkeep: seals, checks, pruning, floods; they hold no session state, "
                      "and the restart skips them",
    Kind.OFFLINE: "only ever written with the daemon stopped (commissioning, `bedside trust pin`); they say "
                  "nothing of how the daemon's last run ended",
}

# JSON types a field may take (the schema's ``type``); "" when it varies.
_JSON = {"int": "integer", "num": "number", "str": "string", "bool": "boolean", "list": "array", "obj": "object",
         "null": "null"}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    json: str                       # "int", "str|null", … (keys of _JSON joined by "|"), or "" for any
    meaning: str


@dataclass(frozen=True, slots=True)
class RecordType:
    name: str
    kind: str                       # a Kind
    when: str
    fields: tuple[Field, ...]
    session: bool = False           # carries ``session`` and ``due`` (a press: ``session`` when made on a session)
    group: str = ""                 # the heading docs/records.md lists it under


def _f(spec: str, meaning: str) -> Field:
    name, _, json = spec.partition(":")
    return Field(name, json, meaning)


_SESSIONS = "A patient's sessions"
_NURSES = "Nurses, episodes and downloads"
_UNIT = "The unit"
_LINK = "The serial link"
_TRUST = "Keys, ward settings and software"
_UPKEEP = "The journal's own upkeep"

_KIND = _f("kind:str", "the session's kind: `hourly`, `routine` (or `extra`)")
_VIA = _f("via:str", "how it was asked for: `button`, `serial`, `simulator`, `stick` …")
_STICK = _f("stick:str", "the stick's id")
_ISSUED = _f("issued:str", "when the ward's settings were issued (ISO 8601)")
_REASON = _f("reason:str", "why, as a word")
_PROBLEM = _f("problem:str", "why, in words")
_REPS_CUT = _f("reps:int|str", "repetitions the guide had counted by the unit's last sign of life after the start, "
               "or `\"unknown\"`")


# What a download fetched (an ``export`` record; an ``export_failed`` whose copy did not match).
_EXPORTED = (_f("from_seq:int", "the first record this download fetched"),
             _f("to_seq:int", "the last record it fetched"), _f("to_hash:str", "the hash of record `to_seq`"),
             _f("folder:str", "on a stick: the folder written"), _f("files:list", "on a stick: the files written"),
             _f("bytes:int", "on a stick: bytes written"), _f("records:int", "on a stick: records written"),
             _f("seconds:num", "on a stick: how long it took"))


def _t(name: str, kind: str, group: str, when: str, *fields: Field, session: bool = False) -> RecordType:
    return RecordType(name, kind, when, fields, session, group)


TYPES: Final[Mapping[str, RecordType]] = {r.name: r for r in (
    # --- a patient's sessions
    _t(T.PROMPT, Kind.CLINICAL, _SESSIONS, "a session is offered",
       _KIND, _f("exercises:list", "the exercises, by name"), _f("reps:int", "repetitions asked for"),
       _f("deferred:bool", "`true`: held over the night"),
       _f("late_s:int", "seconds it was offered late (after an outage or a clock jump)"), session=True),
    _t(T.REPEAT, Kind.CLINICAL, _SESSIONS, "the soft repeat of an unanswered prompt",
       _f("n:int", "the repeat's number"), _f("after_snooze:bool", "`true`: the prompt is back after a snooze"),
       session=True),
    _t(T.SNOOZE, Kind.CLINICAL, _SESSIONS, "a long press snoozed the prompt",
       _f("until:str", "when the prompt comes back"), _f("n:int", "1st, 2nd … snooze"),
       _f("held_s:num", "how long the button was held"), session=True),
    _t(T.PRESS, Kind.CLINICAL, _SESSIONS, "a button press",
       _f("kind:str", "`short`, `long` or `nurse`"), _f("held_s:num", "how long the button was held"),
       _f("action:str", "what it did: `start`, `stop`, `progress`, `dismiss`, `snooze_refused`, `nurse_screen`, "
          "`extra` (with `variation`), `pause_menu`, `pause`, `resume`, `occupied`; `confirm` and `cancel` answer a "
          "change asked for over the serial link"),
       _f("variation:str", "for `extra`: `pumps` or `circles`"), session=True),
    _t(T.DONE, Kind.CLINICAL, _SESSIONS, "a guided session finished or was ended early",
       _KIND, _f("reps:int", "repetitions completed"), _f("planned:int", "repetitions planned"),
       _f("early:bool", "ended early by a press (or a discharge)"),
       _f("late_min:int", "minutes from its offer to the press that started it"),
       _f("prompt_to_start_s:int", "seconds from this unit's first prompt of it to the start"),
       _f("duration_s:int", "seconds the guide ran"), _f("snoozes:int", "how often it was put off"), session=True),
    _t(T.MISSED, Kind.CLINICAL, _SESSIONS, "a session ended without being done",
       _f("reason:str", "`unanswered`, `superseded` (a newer session came), `power_loss`, `unit_off`, `clock_jump`, "
          "`busy`, `late`, `discharged`"),
       _KIND, _f("by:str", "for `superseded`: the session that came"),
       _f("repeats:int", "repeats made (unanswered)"), _f("snoozes:int", "snoozes taken (unanswered)"),
       session=True),
    _t(T.INTERRUPTED, Kind.CLINICAL, _SESSIONS, "at start: a guided session was under way when the unit stopped; "
       "the session is settled, never recorded `missed`",
       _f("reason:str", "`power_loss` or `unit_off`"), _f("started:str", "the press that began it"),
       _REPS_CUT, _f("reps_known_at:str", "the last sign of life the reps are counted to"),
       _f("planned:int", "repetitions planned"), _KIND, _f("late_min:int", "minutes from its offer to the start"),
       _f("snoozes:int", "how often it was put off"), session=True),
    _t(T.DEFERRED, Kind.CLINICAL, _SESSIONS, "a session fell due at night, or shares another session's prompt",
       _f("offer:str", "when it is offered (equal to `due`: not held over)"), _KIND,
       _f("merged_into:str", "the session whose prompt it shares"), session=True),
    _t(T.PAUSED, Kind.CLINICAL, _SESSIONS, "a session fell inside a nurse's pause: neither missed nor due",
       _KIND, _f("until:str", "when the pause ends"), session=True),
    _t(T.EXTRA, Kind.CLINICAL, _SESSIONS, "an extra session the patient asked for ended: done, never due "
       "(its session id is the local start time and `extra`)",
       _KIND, _f("exercises:list", "the exercises, by name"), _f("reps:int|str", "repetitions completed "
       "(when interrupted: as for `interrupted`)"), _f("planned:int", "repetitions planned"),
       _f("early:bool", "ended early"), _f("duration_s:int", "seconds the guide ran"),
       _f("interrupted:bool", "`true`: under way when the unit stopped (recorded at the next start)"),
       _f("reason:str", "when interrupted: `power_loss` or `unit_off`"),
       _f("started:str", "when interrupted: the press that began it"),
       _f("reps_known_at:str", "when interrupted: the last sign of life the reps are counted to"), session=True),
    # --- nurses, episodes and downloads
    _t(T.PAUSE, Kind.CLINICAL, _NURSES, "a nurse paused prompting",
       _f("until:str", "when the pause ends"), _f("duration:str", "`1h`, `2h`, `4h`, `morning`"), _VIA),
    _t(T.RESUME, Kind.CLINICAL, _NURSES, "a pause ended",
       _f("via:str", "`button`, `serial`, `simulator`, or `timer` when it ran its time"),
       _f("early:bool", "ended before its time"), _f("until:str", "when it would have ended")),
    _t(T.ADMIT, Kind.CLINICAL, _NURSES, "a patient was admitted: an episode starts",
       _f("episode:str", "the hospital's id, never a name"), _f("surgery:str", "the date of surgery, YYYY-MM-DD"),
       _f("regimen:str", "the regimen followed"), _f("day:int", "post-operative day at admission (0: surgery)"),
       _VIA, _f("amended:bool", "`true`: it corrects the open episode")),
    _t(T.DISCHARGE, Kind.CLINICAL, _NURSES, "the episode ended",
       _f("episode:str", "the hospital's id"), _f("day:int", "post-operative day"), _VIA,
       _f("reason:str", "`new admission` when another admission closed it")),
    _t(T.REFUSED, Kind.CLINICAL, _NURSES, "an admission or discharge was not accepted",
       _f("command:str", "`admit` or `discharge`"), _PROBLEM, _VIA),
    _t(T.EXPORT, Kind.CLINICAL, _NURSES, "the journal was downloaded (the latest is the nurse screen's last download)",
       _f("via:str", "`serial`, `stick` …"), *_EXPORTED[:3], _STICK, *_EXPORTED[3:],
       _f("update:str", "on a stick: a software version staged from it"),
       _f("update_refused:str", "on a stick: why its software update was not staged"),
       _f("simulated:bool", "`true`: a download the simulator's script made")),
    _t(T.EXPORT_REFUSED, Kind.CLINICAL, _NURSES, "a USB stick that is not the ward's got nothing",
       _f("via:str", "`stick`"), _REASON, _PROBLEM),
    _t(T.EXPORT_FAILED, Kind.CLINICAL, _NURSES, "a ward stick could not take the export (reason `journal`: the "
       "stick's copy did not match the journal; the export's own fields then say what it claimed)",
       _f("via:str", "`stick`"), _REASON, _PROBLEM, _STICK,
       _f("written:list", "the files written whole before it failed"),
       *(_f(f"{f.name}:{f.json}", "reason `journal` only: " + f.meaning.removeprefix("on a stick: "))
         for f in _EXPORTED)),
    # --- the unit
    _t(T.START, Kind.CLINICAL, _UNIT, "the daemon started",
       _f("version:str", "the software version"), _f("config:str", "fingerprint of the settings"),
       _f("unit:str", "the unit's id"), _f("episode:str", "the open episode (while a patient is admitted)"),
       _f("surgery:str", "its date of surgery"), _f("regimen:str", "its regimen"),
       _f("unadmitted_since:str", "with no one admitted: the date the unadmitted unit's days count from"),
       _f("vacant:bool", "`true`: the bed is empty since a discharge")),
    _t(T.STOP, Kind.CLINICAL, _UNIT, "the daemon stopped cleanly", _REASON),
    _t(T.POWER_LOSS, Kind.CLINICAL, _UNIT, "at start, when the previous run did not stop cleanly",
       _f("last_known:str", "when the unit was last known running (its last record or, if later, its heartbeat)"),
       _f("last_record:str", "its last record's time, when it differs"), _f("last_seq:int", "its last record")),
    _t(T.CLOCK_SET, Kind.CLINICAL, _UNIT, "the clock was set on command, or moved more than 2 s against the monotonic "
       "clock", _f("old:str", "the time before"), _f("new:str", "the time after"),
       _f("jump_s:num", "seconds it moved"), _f("source:str", "`nurse`, `detected` …")),
    _t(T.FAULT, Kind.CLINICAL, _UNIT, "a part failed",
       _f("part:str", "`display`, `buzzer`, `button`, `storage`, `clock`, `journal`, `seal`, `serial`, `config`, "
          "`regimen`"), _PROBLEM,
       _f("damage:bool", "`true`: the journal's own damage"), _f("first_bad:int|null", "the first damaged record"),
       _f("segment:int", "the damaged segment"), _f("signatures:list", "the damage found, to know it again"),
       _f("problems:int", "how many problems were found"),
       _f("outage:bool", "`true`: a storage outage, written from the reserve after a restart"),
       _f("reserve_refused:list", "up to six reasons the outage reserve's values were refused"),
       _f("not_examined:int", "files named as segments a start did not look at (read later)"),
       _f("key_id:str|null", "for a lost seal key: the key the journal was commissioned with"),
       _f("source:str", "for the clock: who set it"), _f("last_record:str", "for the clock: the last record's time"),
       _f("now:str", "for the clock: the clock's time")),
    _t(T.FAULT_CLEARED, Kind.CLINICAL, _UNIT, "a part recovered",
       _f("part:str", "the part"), _f("held_s:num", "for the button: how long it was held"),
       _f("written_late:int", "records kept in memory and written now"),
       _f("lost:obj", "records lost, by type (memory ran out)"),
       _f("from_reserve:bool", "`true`: after a restart from the outage reserve"), _f("restarted:bool", "`true`"),
       _f("until:", "the last record kept"), _f("kept_prompting:bool", "prompts were made during the outage"),
       _f("not_saved:obj", "records the reserve had no room for, by type")),
    _t(T.SELFTEST, Kind.CLINICAL, _UNIT, "at start and daily",
       _f("trigger:str", "`start` or `daily`"), _f("display:", "the display's result"),
       _f("buzzer:", "`chirped`, `skipped: night` …"), _f("journal:", "the journal's result"),
       _f("free_mb:", "free space on the card, MB")),
    # --- the serial link
    _t(T.UNLOCK, Kind.CLINICAL, _LINK, "the serial link was unlocked",
       _f("via:str", "`laptop` (a certified laptop key), or `terminal` or `tool` (the ward secret)"),
       _f("nurse:str", "the nurse's name on the certificate"), _f("laptop:str", "the laptop's key"),
       _f("cert:str", "the certificate's id")),
    _t(T.UNLOCK_FAILED, Kind.CLINICAL, _LINK, "a refused answer or a wrong secret",
       _f("via:str", "as for `unlock`"), _f("failures:int", "wrong in a row"),
       _f("left:int", "attempts before a lockout"),
       _f("why:str", "for `laptop`: `bad_answer`, `bad_certificate`, `unknown_key`, `expired`, `not_yet_valid`, "
          "`revoked`, `no_keys`"), _f("nurse:str", "the nurse named, when known"),
       _f("laptop:str", "the laptop key named, when known"), _f("cert:str", "the certificate named, when known")),
    _t(T.LOCKOUT, Kind.CLINICAL, _LINK, "the fifth wrong secret in a row: the port refuses every attempt for ten "
       "minutes",
       _f("failures:int", "wrong in a row"), _f("minutes:int", "how long"), _f("until:str", "until when")),
    _t(T.LOCKOUT_END, Kind.CLINICAL, _LINK, "the lockout is over",
       _f("refused:int", "attempts refused, unchecked, during it")),
    _t(T.LOCK, Kind.CLINICAL, _LINK, "the link is locked again",
       _f("reason:str", "`command`, `idle`, `unplugged`, `stopped`, `wrong_secret`, `other_connection`")),
    _t(T.CHANGE_DECLINED, Kind.CLINICAL, _LINK, "a change asked for over the link was not made",
       _f("what:str", "`time`, `admit`, `discharge` …"), _f("change:str", "the change, in words"),
       _f("reason:str", "`timeout`, `cancelled`, `busy`, `superseded`, `withdrawn`, `stopped`")),
    # --- keys, ward settings and software
    _t(T.SEAL_KEY, Kind.OFFLINE, _TRUST, "`bedside keys init` (commissioning)",
       _f("key_id:str", "the seal key's public id"), _f("unit:str", "the unit's id")),
    _t(T.SECRET_SET, Kind.OFFLINE, _TRUST, "`bedside secret set` (a unit not yet moved to keys)",
       _f("replaced:bool", "a secret was there before")),
    _t(T.KEYS_PINNED, Kind.OFFLINE, _TRUST, "`bedside trust pin` pinned the ward's public keys",
       _f("ward:str", "the ward's name"), _f("keys:list", "key ids"), _f("roles:list", "their roles"),
       _f("secret_removed:bool", "a ward secret was removed")),
    _t(T.SETTINGS_APPLIED, Kind.CLINICAL, _TRUST, "signed ward settings were applied after a press",
       _f("counter:int", "the settings' counter"), _f("key:str", "the ward authority key's id"), _ISSUED, _STICK,
       _f("certs:list", "laptop certificates newly revoked"), _f("laptop_keys:list", "laptop keys newly revoked"),
       _f("sticks:list", "sticks newly revoked"), _f("recovery_from:", "a recovery let them in")),
    _t(T.CONFIG_CHANGED, Kind.CLINICAL, _TRUST, "the ward's configuration from a ward stick was applied after a press",
       _f("old:str", "the configuration's fingerprint before"), _f("new:str", "after"),
       _f("changed:list", "what a nurse would call the parts that changed"), _ISSUED, _STICK),
    _t(T.SECRET_CHANGED, Kind.CLINICAL, _TRUST, "a new ward secret from a ward stick was applied after a press",
       _f("old_key:str|null", "the old stick key's public id"), _f("new_key:str", "the new one's"), _ISSUED, _STICK),
    _t(T.SETTINGS_REFUSED, Kind.CLINICAL, _TRUST, "ward settings on a stick were not applied; nothing changed",
       _f("reason:str", "`bad_signature`, `other_ward`, `malformed`, `invalid`, `older`, `implausible`, "
          "`not_confirmed`, `no_secret`, `no_keys`, `failed`"), _PROBLEM, _STICK),
    _t(T.SOFTWARE_UPDATE, Kind.CLINICAL, _TRUST, "a newer release from a ward stick was switched to",
       _f("old:str", "the version before"), _f("new:str", "the version now"),
       _f("counter:int", "the release counter"), _f("key:str", "the release key's id"),
       _f("recovery_from:", "a ward recovery let it in")),
    _t(T.SOFTWARE_ROLLBACK, Kind.CLINICAL, _TRUST, "that version failed its first watchdog period or self-test and the "
       "one before runs again", _f("from:str", "the version that failed"), _f("to:str", "the version running"),
       _REASON),
    _t(T.SOFTWARE_UPDATE_REFUSED, Kind.CLINICAL, _TRUST, "a stick's update was not installed",
       _f("current:str", "the version running"), _f("version:str|null", "the version the bundle claims"),
       _f("reason:str", "`unsigned`, `bad_signature`, `damaged`, `malformed`, `downgrade`, `implausible`, "
          "`too_large`, `no_space`, `no_keys`")),
    _t(T.SOFTWARE_UPDATE_FAILED, Kind.CLINICAL, _TRUST, "a confirmed update could not be installed (nothing that runs "
       "changed)", _f("old:str", "the version running"), _f("new:str", "the version it could not install"),
       _REASON),
    # --- the journal's own upkeep
    _t(T.SEAL, Kind.BOOKKEEPING, _UPKEEP, "about every three hours while records are written, before a new segment, "
       "and at a clean stop", _f("epoch:int", "the seal's place in the key's evolution"),
       _f("key_id:str", "the seal key's public id"), _f("mac:str", "HMAC-SHA256 over the chain head it follows")),
    _t(T.VERIFIED, Kind.BOOKKEEPING, _UPKEEP, "after each start's whole check of the journal found nothing new",
       _f("seq_checked:int", "the head it reached"), _f("hash_checked:str", "that head's hash"),
       _f("records_checked:int", "records checked")),
    _t(T.PRUNED, Kind.BOOKKEEPING, _UPKEEP, "retention deleted an old, exported segment",
       _f("segment:int", "the segment"), _f("first_seq:int", "its first record"), _f("last_seq:int", "its last"),
       _f("last_hash:str", "its last record's hash"), _f("from_seq:int", "where the pruned part begins: 1"),
       _f("exported_to:str", "where it was exported"), _f("exported_at:str", "when")),
    # Both are written with data {"type": "press"}, which the envelope's own ``type`` replaces.
    _t(T.FLOOD, Kind.BOOKKEEPING, _UPKEEP, "presses that change nothing passed 30 an hour",
       _f("limit:int", "records an hour"),
       _f("per_s:num", "the window, seconds")),
    _t(T.FLOOD_END, Kind.BOOKKEEPING, _UPKEEP, "the flood ended",
       _f("suppressed:int", "how many were counted, not logged")),
)}

# Every record may carry this data field too.
COMMON: Final = (Field("offline", "bool", "`true`: written with the daemon stopped (the offline writer)"),)


def of_kind(kind: str) -> frozenset[str]:
    return frozenset(n for n, r in TYPES.items() if r.kind == kind)


# The records that settle a planned session: each ends in exactly one of them (or is still
# open). An extra session, never due, is settled by its ``extra`` record.
OUTCOMES: Final = (T.DONE, T.MISSED, T.INTERRUPTED, T.PAUSED)
SESSION_TYPES: Final = tuple(n for n, r in TYPES.items() if r.session)


@dataclass(frozen=True, slots=True)
class Key:
    name: str
    py: type
    json: str
    required: bool
    meaning: str


# The envelope: the keys every record has (``session`` and ``due``: session records), the rest
# of a record being its ``data``. In the order verify names them.
ENVELOPE: Final[Mapping[str, Key]] = {k.name: k for k in (
    Key("seq", int, "int", True, "1, 2, 3 … strictly increasing, no gaps"),
    Key("hash", str, "str", True, "SHA-256 of this record's canonical JSON (sorted keys, no spaces, UTF-8, "
        "without `hash`), 64 hex digits"),
    Key("prev", str, "str", True, "the `hash` of the previous record (64 zeros for the first)"),
    Key("type", str, "str", True, "what happened: one of the record types"),
    Key("time", str, "str", True, "ISO 8601 local time with its UTC offset, to the millisecond "
        "(`2026-11-24T09:00:00.000+00:00`)"),
    Key("boot", str, "str", True, "the boot id of the run that wrote it"),
    Key("mono_ms", int, "int", True, "milliseconds of monotonic time since that boot"),
    Key("tq", str, "str", True, "time quality when written: `ntp`, `rtc`, `set-by-nurse`, `unverified`, "
        "`distrusted` or `simulated`"),
    Key("session", str, "str", False, "session records: a stable id made of the session's local scheduled time "
        "and kind (`2026-11-24T09:00 routine`)"),
    Key("due", str, "str", False, "session records: its scheduled time"),
)}
ENVELOPE_KEYS: Final = frozenset(ENVELOPE)


# --- the generated documents ------------------------------------------------------------

def _json_type(spec: str) -> dict[str, Any]:
    if not spec:
        return {}
    types = [_JSON[s] for s in spec.split("|")]
    return {"type": types[0] if len(types) == 1 else types}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one record line of an export (``bedside log export``)."""
    envelope = {k.name: {**_json_type(k.json), "description": k.meaning} for k in ENVELOPE.values()}
    envelope["type"]["enum"] = sorted(TYPES)
    envelope["seq"]["minimum"] = 1
    envelope["hash"]["pattern"] = envelope["prev"]["pattern"] = "^[0-9a-f]{64}$"
    common = {f.name: {**_json_type(f.json), "description": f.meaning} for f in COMMON}
    per_type = [{
        "if": {"properties": {"type": {"const": r.name}}, "required": ["type"]},
        "then": {"description": f"{r.name} ({r.kind}): {r.when}",
                 "properties": {f.name: {**_json_type(f.json), "description": f.meaning} for f in r.fields}},
    } for r in TYPES.values()]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://bedside.invalid/schema/record.schema.json",
        "title": "Bedside journal record",
        "description": "One record line of a Bedside journal export (JSONL, after the header line): the envelope, "
                       "then the fields of its type's data. Generated from bedside.core.records; docs/records.md "
                       "says the same in words. Fields not listed may be added by later versions.",
        "type": "object",
        "required": [k.name for k in ENVELOPE.values() if k.required],
        "properties": {**envelope, **common},
        "allOf": per_type,
    }


def markdown() -> str:
    """docs/records.md: the data dictionary."""
    out = ["# Records: the data dictionary", "",
           "<!-- Generated from device/bedside/core/records.py by `python tools/records_doc.py`; do not edit. -->", "",
           "Every line of a journal export after its header is one record: the envelope below, then the fields "
           "of its type's `data`, all in one JSON object (canonical JSON: sorted keys, no spaces, UTF-8). "
           "The JSON Schema of one line ships with the package as `bedside/journal/record.schema.json`. "
           "[journal.md](journal.md) says how the journal is kept, sealed and verified; "
           "[report.md](report.md) how the report reads these records.", "",
           "## The envelope", "", "| key | JSON type | always | meaning |", "| --- | --- | --- | --- |"]
    out += [f"| `{k.name}` | {_JSON[k.json]} | {'yes' if k.required else 'no'} | {k.meaning} |"
            for k in ENVELOPE.values()]
    out += ["", "Any record's data may also carry:", "", "| field | JSON type | meaning |", "| --- | --- | --- |"]
    out += [f"| `{f.name}` | {_types(f.json)} | {f.meaning} |" for f in COMMON]
    out += ["", "## Kinds", "", "| kind | meaning |", "| --- | --- |"]
    out += [f"| {k} | {text} |" for k, text in KINDS.items()]
    out += ["", "## Session outcomes", "",
            "Every planned session ends in exactly one of these records (or is still open): "
            + ", ".join(f"`{o}`" for o in OUTCOMES)
            + ". An extra session, asked for and never due, ends in its `extra` record. "
              "Session records (they carry `session` and `due`): "
            + ", ".join(f"`{s}`" for s in SESSION_TYPES) + " (a `press` carries `session` only, when made on a "
              "session).", "",
            "## Record types", ""]
    out += ["| type | kind | when |", "| --- | --- | --- |"]
    out += [f"| [`{r.name}`](#{r.name}) | {r.kind} | {r.when} |" for r in TYPES.values()]
    group = None
    for r in TYPES.values():
        if r.group != group:
            group = r.group
            out += ["", f"## {group}"]
        carries = " Carries `session` when made on a session." if r.name == T.PRESS else \
            " Carries `session` and `due`." if r.session else ""
        out += ["", f"### {r.name}", "", f"{r.kind.capitalize()}: {r.when}.{carries}", ""]
        if r.fields:
            out += ["| field | JSON type | meaning |", "| --- | --- | --- |"]
            out += [f"| `{f.name}` | {_types(f.json)} | {f.meaning} |" for f in r.fields]
        else:
            out.append("No fields.")
    return "\n".join(out) + "\n"


def _types(spec: str) -> str:
    return " or ".join(_JSON[s] for s in spec.split("|")) if spec else "any"
