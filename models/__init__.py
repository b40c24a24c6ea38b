"""SQLModel tables and the database engine. Below every other layer: imports nothing of Veles'."""

from models.tenancy import Plan, Role, Tenant, User

__all__ = ["Plan", "Role", "Tenant", "User"]
