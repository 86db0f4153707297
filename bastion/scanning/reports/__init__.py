"""Scan reports: PDF (HTML printed by Chromium), JSON, CSV and SARIF 2.1.0, of one scan or of a
target's latest state, rendered by a server-side task and stored through Django's storage API.

``data`` reads the database once, ``html`` and ``formats`` turn that into documents, and
``service`` holds the named actions (request, generate, download) with their audit rows.
"""
