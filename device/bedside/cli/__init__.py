"""The ``bedside`` command: argument parsing and error messages only, one module per group.

May import every other wing; nothing imports ``cli``.
"""
