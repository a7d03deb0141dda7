"""The nurse's laptop side of the serial link: the client and ``bedside pull``.

May import ``report``, ``link``, ``journal`` and ``core``.
"""
