"""Test configuration shared by the whole suite.

Hypothesis profiles are chosen with ``HYPOTHESIS_PROFILE`` (``dev`` by default, ``ci`` in CI).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
