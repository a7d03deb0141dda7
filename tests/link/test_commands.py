"""The verbs' table: every row has its handlers, and help is made from it."""

from __future__ import annotations

import inspect

from bedside.link import commands
from bedside.link.on_loop import LinkService
from bedside.link.port import Connection


def test_every_typed_verb_has_its_terminal_handler_and_every_framed_one_its_loop_side() -> None:
    for verb in commands.VERBS:
        assert verb.typed or verb.parse is not None, f"{verb.word}: neither typed nor framed"
        if verb.typed:
            assert callable(getattr(Connection, f"_typed_{verb.word}", None)), verb.word
        if verb.parse is not None:
            assert verb.on_loop is not None, verb.word
    # Every loop-side request the link serves is reached from the table or a typed handler.
    served = {name for name, fn in inspect.getmembers(LinkService, inspect.isfunction) if not name.startswith("_")}
    source = inspect.getsource(commands) + inspect.getsource(Connection)
    assert {name for name in served if f"svc.{name}(" not in source} <= {"attach", "deadline", "fire", "decided",
                                                                          "stopping", "closed", "port_fault",
                                                                          "unlock_typed", "withdraw",
                                                                          "ward_changed", "revocations_changed"}


def test_help_lists_every_typed_form_in_two_columns() -> None:
    text = commands.help_lines()
    assert text[0] == "Commands (press Enter after each):"
    assert "  help                         this list" in text
    assert "  time set YYYY-MM-DD HH:MM    set the clock (local time; HH:MM: today)" in text
    # A form too long for the column has its explanation on the next line.
    i = text.index("  episode admit EPISODE-ID SURGERY-DATE [REGIMEN] [mrn=NUMBER]")
    assert text[i + 1] == " " * 31 + "admit: hospital visit number or scan, no name"
    forms = [form for v in commands.VERBS for form, _ in v.typed]
    assert all(any(line.startswith(f"  {form}") for line in text) for form in forms)
    assert all(len(line) <= 80 for line in text)


def test_words_are_unique_and_the_press_verbs_are_the_changes() -> None:
    words = [w for v in commands.VERBS for w in (v.word, *v.also)]
    assert len(words) == len(set(words))
    assert {v.word for v in commands.VERBS if v.press} == {"time", "admit", "discharge", "pause", "resume"}
