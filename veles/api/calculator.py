"""The what-if calculator (`POST /api/v1/calculator`): margin and profit of a hypothetical book.

The body is the risk core's own input document, so its OpenAPI schema is exact; anything the
schema cannot say (a held symbol without a quote, a missing conversion pair) comes back as 422
naming the field, in the same shape as FastAPI's validation errors.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from veles.api.deps import requires
from veles.services.auth import Identity
from veles.services.calculator import CalcInput, WhatIf, what_if
from veles.services.permissions import Permission

router = APIRouter(prefix="/api/v1", tags=["calculator"])


@router.post("/calculator", responses={401: {"description": "Not signed in"},
                                       403: {"description": "Role may not use the calculator"}})
def calculator(
    document: CalcInput, _identity: Annotated[Identity, Depends(requires(Permission.USE_CALCULATOR))]
) -> WhatIf:
    """Margin, equity, margin level and each position's profit for the account described."""
    return what_if(document)
