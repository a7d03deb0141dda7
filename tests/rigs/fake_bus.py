"""A fake I2C bus in the shape of luma's ``serial_interface`` seam: it records the commands a
driver sends and counts the data, and can be made to fail as an unplugged panel does. (For the
controller's own memory and the bytes on the wire, see ``oled.py``.)"""

from __future__ import annotations


class Bus:
    """A fake I2C interface with luma's serial_interface shape; records what the driver sends."""

    def __init__(self) -> None:
        self.commands: list[tuple[int, ...]] = []
        self.data_bytes = 0
        self.frames = 0
        self.fail = False

    def command(self, *cmd: int) -> None:
        if self.fail:
            raise OSError(121, "Remote I/O error")
        self.commands.append(cmd)

    def data(self, data: list[int]) -> None:
        if self.fail:
            raise OSError(121, "Remote I/O error")
        self.data_bytes += len(data)
        self.frames += 1

    def cleanup(self) -> None:
        pass
