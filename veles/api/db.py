"""The database sessions routes use, each committed before the response leaves.

FastAPI ends a `yield` dependency after the response has been sent unless it is declared with
`scope="function"`. For a session that would mean a 201 could reach the client and the commit
then fail (a database restart at the wrong moment), losing a write the client was told succeeded,
and a client reading right after the answer could miss its own write. With the function scope the
commit runs first, and a failed commit is the client's 5xx. Every route takes its session from
here: `TenantUnit` (the caller's tenant, row-level security) or `PlatformUnit` (every tenant:
sign-in, password reset), never `deps.tenant_db` or `deps.platform_session` directly.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlmodel import Session

from veles.api.deps import platform_session, tenant_db

TenantUnit = Annotated[Session, Depends(tenant_db, scope="function")]
PlatformUnit = Annotated[Session, Depends(platform_session, scope="function")]

# A row id in a path: PostgreSQL's `integer`, so an id beyond it is a 422 naming the parameter, not
# a database error.
RowId = Annotated[int, Path(gt=0, lt=2**31, description="Row id.")]
