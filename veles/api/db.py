"""The tenant session the data routes use: committed before the response leaves.

FastAPI ends a `yield` dependency after the response has been sent unless it is declared with
`scope="function"`. For `deps.tenant_db` that would mean a 201 could reach the client and the
commit then fail (a database restart at the wrong moment), losing a write the client was told
succeeded. With the function scope the commit runs first, and a failed commit is the client's 5xx.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlmodel import Session

from veles.api.deps import tenant_db

TenantUnit = Annotated[Session, Depends(tenant_db, scope="function")]

# A row id in a path: PostgreSQL's `integer`, so an id beyond it is a 422 naming the parameter, not
# a database error.
RowId = Annotated[int, Path(gt=0, lt=2**31, description="Row id.")]
