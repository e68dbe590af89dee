"""Test-run settings.

In CI (CI=true) hypothesis explores the same examples every run, so a submission's result does not
depend on luck; a developer's runs keep exploring new ones (and report what they find).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
