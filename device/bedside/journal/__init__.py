"""The record of care: the hash chain, segment files, the store the loop writes through,
seals, verification, retention, the heartbeat and every format the journal leaves in
(``export``: the export file and the journal CSV).

May import ``bedside.core`` and the shared ``bedside.durable``/``bedside.secret``.
``chain`` is pure (no clock, no disk).
"""
