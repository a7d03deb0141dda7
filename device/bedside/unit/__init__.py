"""The running unit: the loop that owns the state, its wiring for ``run`` and ``simulate``,
clocks, pins, sounds, supervision (systemd notify, watchdog, self-test) and the simulator.

May import ``link``, ``journal``, ``display`` and ``core`` (never ``cli``, ``laptop``,
``stick`` or ``report``).
"""
