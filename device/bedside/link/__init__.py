"""The nurse's serial link, unit side: line and frame protocol, the commands, access control,
confirmed changes, the port and what runs on the loop.

May import ``journal`` and ``core``. ``lines``, ``frames``, ``batch``, ``access`` and ``changes`` are pure.
"""
