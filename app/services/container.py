"""The services one process holds, as the API's dependencies and the CLI's commands reach them."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.db.session import Database
from app.db.supervisor import EmbeddedSupervisor
from app.services.access import KeyService
from app.services.analysis import FaceAnalyser
from app.services.audit import AuditTrail
from app.services.enrollment import EnrollmentService
from app.services.gallery import GalleryService
from app.services.health import HealthService
from app.services.ratelimit import RateLimiter
from app.services.recognition import RecognitionService


@dataclass(frozen=True)
class Services:
    """The use cases over one database, and, where the process holds one, one engine."""

    settings: Settings
    database: Database
    gallery: GalleryService
    keys: KeyService
    audit: AuditTrail
    rate_limiter: RateLimiter
    analyser: FaceAnalyser | None = None
    recognition: RecognitionService | None = None
    enrollment: EnrollmentService | None = None
    health: HealthService | None = None
    supervisor: EmbeddedSupervisor | None = None  # the embedded Postgres' restarter, for `facerec serve`
