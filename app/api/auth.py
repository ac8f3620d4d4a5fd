"""Authentication and authorisation dependencies: every route but the probes and docs needs a key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.api.deps import ServicesDep
from app.services.access import ANONYMOUS, Principal, Scope

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer frk_...`")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: frk_...`")


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits keys with `scope` (or admin), within their rate limit in that scope."""

    async def dependency(
        services: ServicesDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        api_key: Annotated[str | None, Security(_api_key_header)],
    ) -> Principal:
        if not services.settings.auth_enabled:
            return ANONYMOUS
        token = bearer.credentials if bearer is not None else api_key
        # One transaction: the key lookup, the scope check and the take from the shared rate limit.
        return await services.keys.authenticate(token, scope=scope)

    dependency.__name__ = f"require_{scope.value}"
    return dependency


DetectKey = Annotated[Principal, Depends(require(Scope.DETECT))]
VerifyKey = Annotated[Principal, Depends(require(Scope.VERIFY))]
IdentifyKey = Annotated[Principal, Depends(require(Scope.IDENTIFY))]
EnrollKey = Annotated[Principal, Depends(require(Scope.ENROLL))]
ManageKey = Annotated[Principal, Depends(require(Scope.MANAGE))]
AdminKey = Annotated[Principal, Depends(require(Scope.ADMIN))]
MetricsKey = Annotated[Principal, Depends(require(Scope.METRICS))]
