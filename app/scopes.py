"""The scopes an API key can hold: one per kind of use, and admin over all of them."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    DETECT = "detect"
    VERIFY = "verify"
    IDENTIFY = "identify"
    ENROLL = "enroll"
    MANAGE = "manage"
    METRICS = "metrics"  # read /metrics: for a Prometheus scraper's own key
    ADMIN = "admin"
