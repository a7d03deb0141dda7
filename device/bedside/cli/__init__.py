"""The ``bedside`` command: argument parsing and messages for people only, one module per
command group (``unit``, ``config``, ``journal``, ``secret``, ``report``, ``serial``,
``stick``, ``ward``, ``update``), and ``main``: the parser made from them, and the one
place an error becomes a message and an exit code.

May import every other wing but ``link`` (the nurse's end of the link is ``laptop``);
nothing imports ``cli``.
"""
