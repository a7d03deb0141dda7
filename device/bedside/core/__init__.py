"""The pure core: what the unit knows and decides, as functions of (config, state, event, now).

Lives here: events and records, config parsing (not loading), exercise kinds, the planner,
episodes, the guide, the state machine and what the screens show. Imports nothing outside
``bedside.core`` and the standard library, never reads a clock, never touches a disk, pin,
panel or port (``tests/test_design.py`` walks this folder to keep it so).
"""
