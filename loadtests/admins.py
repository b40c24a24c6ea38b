"""Tenant admins: the broker's own administrators looking after users, connections and rules.

They come by rarely (minutes apart) and read lists: the users, the MT5 connections and their
state, the alert rules and the escalation policy, pending invitations.
"""

from __future__ import annotations

from locust import between, task
from rest_user import RestUser
from sign_in import ADMIN


class TenantAdmin(RestUser):
    """One administrator of the demo's broker."""

    weight = 1
    wait_time = between(10, 40)
    scenario = "admin"
    who = ADMIN

    @task(2)
    def users(self) -> None:
        self.call("GET", "/api/v1/users", "GET /api/v1/users")

    @task(2)
    def connections(self) -> None:
        self.call("GET", "/api/v1/connections", "GET /api/v1/connections")

    @task(1)
    def rules(self) -> None:
        self.call("GET", "/api/v1/alert-rules", "GET /api/v1/alert-rules")
        self.call("GET", "/api/v1/alert-escalation", "GET /api/v1/alert-escalation")

    @task(1)
    def invitations(self) -> None:
        self.call("GET", "/api/v1/invitations", "GET /api/v1/invitations")
