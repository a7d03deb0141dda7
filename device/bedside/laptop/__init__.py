"""The nurse's laptop: the serial client, finding the unit's port, ``bedside pull`` and
``bedside set-time``, and sending a FHIR bundle to the hospital's server.

May import ``report``, ``link``, ``journal``, ``core`` and the shared modules.
"""
