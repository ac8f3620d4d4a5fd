"""Every SQL statement the service runs, named by intent, on the unit of work's connection.

`Database.transaction()` (app.db.session) yields one `Repository`: whatever it runs commits
together when the block succeeds, and rolls back together when it raises.
"""

from __future__ import annotations

from app.db.repository.access import AccessStatements, AuditWriteError
from app.db.repository.faces import FaceStatements, face_candidates
from app.db.repository.gallery import GalleryStatements, NameTakenError
from app.db.repository.ratelimits import RateLimitStatements

__all__ = ["AuditWriteError", "NameTakenError", "Repository", "face_candidates"]


class Repository(GalleryStatements, FaceStatements, AccessStatements, RateLimitStatements):
    """The statements of one transaction."""
