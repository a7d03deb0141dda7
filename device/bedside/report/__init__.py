"""Reports: sessions from records (``adherence``, pure), the report model and CSV, its HTML
and SVG, the bundle a nurse takes away (``bundle``: export, CSV and report, for ``pull``
and the stick alike), the ward page and the FHIR bundle.

May import ``journal``, ``core`` and the shared modules.
"""
