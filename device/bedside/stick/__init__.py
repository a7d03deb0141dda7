"""The ward USB stick: its authorisation (``auth``), the export folder written onto it
(``files``), the export itself, the daemon's channel, the privileged mount helper, and
software updates carried on a stick.

May import ``report``, ``unit``, ``link``, ``journal``, ``trust``, ``core`` and the shared
modules.
"""
