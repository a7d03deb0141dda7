"""The one root of every error bedside raises, and the exit codes the command line answers with.

Every exception class in the package derives from ``BedsideError``, and keeps a standard base
beside it where callers catch that (``class FrameError(BedsideError, ValueError)``), as gpiozero's
exceptions do. The exit code is a fact of the class (``exit_code``), not of the place that
catches it: ``bedside``'s ``main`` catches this one class and answers with the code the error
carries and its message, which is written for people. The codes are the README's table.

An error whose class gives no code (the root's ``None``) was never meant to reach a person:
it is caught inside bedside, so one that reaches ``main`` is a fault in bedside, reported with
its details and ``UNEXPECTED`` like any other unexpected exception. (A command may still
choose ``UNEXPECTED`` for an error it words itself: ``UserError(message, UNEXPECTED)``.)

The core, pure: it imports nothing, so every wing (the core too) may use it."""

from __future__ import annotations

# The README's table of exit codes.
DONE = 0
FAILED = 1           # could not finish: a unit, cable, port, stick, disk, journal or hardware problem
USAGE = 2            # nothing was done: wrong use, an input that holds no bedside record, a config with errors
BROKEN = 3           # done, but a record failed verification or the journal was shortened or replaced
REFUSED = 4          # refused by the other side: the ward secret or the laptop's key was not accepted
NOT_CONFIRMED = 5    # nobody pressed the unit's button in time
UNEXPECTED = 70      # a fault in bedside itself (sysexits' EX_SOFTWARE): reported with the details
INTERRUPTED = 130    # Ctrl-C


class BedsideError(Exception):
    """Anything bedside raises on purpose. ``str(e)`` says what is wrong and what to do."""

    exit_code: int | None = None
