"""The ward USB stick: its authorisation, the export written to it, the daemon's channel
and the privileged mount helper.

May import ``report``, ``unit``, ``link``, ``journal``, ``display`` and ``core``.
"""
