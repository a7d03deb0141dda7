"""The adherence report: sessions from records (``adherence``, pure), the report model,
its HTML and SVG.

May import ``journal`` and ``core``.
"""
