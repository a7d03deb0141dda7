"""The nurse's serial link, unit side, one layer a module: ``lines`` (what a person types),
``frames`` (the tool's CRC frames), ``batch`` (records packed for the wire), ``commands``
(the verbs, one table), ``access`` (unlocking, lockouts), ``changes`` (what a nurse may
change), ``port`` (the thread that owns the port), ``on_loop`` (its part on the unit's
loop) and ``unit_port`` (the narrow port through which it, and the stick channel, reach the
loop), and ``texts`` (what a person at a terminal reads).

May import ``journal``, ``core`` and the shared modules; never ``unit``. ``lines``,
``frames``, ``batch``, ``access`` and ``changes`` are pure.
"""
