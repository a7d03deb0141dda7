"""The running unit: the loop that owns the state (``loop``), the one place it is built for
``run`` and ``simulate`` (``wiring``), the host it runs on (``host``: boot id, clock trust,
the data directory's lock, the config file), the journal writer while no loop runs
(``offline``), the journal check, clocks, pins, sounds, supervision (systemd notify,
watchdog, self-test, the system log), installed releases and the simulator.

May import ``link``, ``journal``, ``display``, ``core`` and the shared modules (never
``cli``, ``laptop``, ``stick`` or ``report``).
"""
