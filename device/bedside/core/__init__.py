"""The pure core: what the unit knows and decides, as functions of (config, state, event, now).

Lives here: events and records, config parsing (not loading: ``unit/host.py`` reads the
file), exercise kinds, the panels table, the planner, episodes, pauses, the guide, the state
machine's step (``machine``), the button's debounce and holds (``button``), the rebuild and
catch-up after a restart (``restart``), its state and views, and the screens' values. Imports nothing outside
``bedside.core`` and the standard library, never reads a clock, never touches a disk, pin,
panel or port (``tests/test_design.py`` walks this folder to keep it so).
"""
