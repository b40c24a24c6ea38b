"""The refusals the data services raise, shared so every caller maps them the same way.

Services take plain typed arguments and are called by the REST API and the Reflex pages alike;
both need to tell "this field is wrong" (show it next to the field, HTTP 422) from "no such thing
in your tenant" (HTTP 404, the same answer whether it exists in another tenant or nowhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError


class InvalidInput(ValueError):
    """One input field was refused; `field` names it and the message is safe to show."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class NotFound(LookupError):
    """The tenant has no such row (another tenant's rows are reported the same way)."""


class Conflict(ValueError):
    """The request clashes with what is stored (a duplicate, a plan limit); safe to show."""


class PlanLimit(Conflict):
    """A plan limit refused the request (servers, accounts, history kept): the answer offers the
    portal's plan page (`veles.plans.UPGRADE_PATH`) as the way out."""


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: M | Mapping[str, Any]) -> M:
    """`data` checked by `model`; InvalidInput names the first refused field (dotted path), so a
    form can show the message beside it and the API can answer 422 naming it. An instance of
    `model` (the API has validated the body already) is taken as it is."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or model.__name__
        raise InvalidInput(field, first["msg"]) from None
