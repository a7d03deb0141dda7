"""What every command module shares: where the unit keeps its data, and the error a person can fix."""

from __future__ import annotations

from pathlib import Path

from bedside.core.errors import USAGE, BedsideError

DEFAULT_DATA = Path("/var/lib/bedside")


class UserError(BedsideError):
    """A problem the person running the command can fix; printed without a traceback. The
    command that raises it knows the exit code (``code``, by default ``USAGE``)."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.exit_code = code


def busy(data: Path) -> UserError:
    """A command that writes the journal, refused while a unit (the daemon or a simulator) holds it."""
    return UserError(f"a bedside unit is running on {data} (the daemon, or a simulator); stop it first "
                     "(systemctl stop bedside, or quit the simulator): one program writes a journal at a time")
