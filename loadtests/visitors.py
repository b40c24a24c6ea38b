"""People opening the portal: the sign-in page and the backend's health ping, before any live
connection opens."""

from __future__ import annotations

from locust import HttpUser, between, task


class PortalVisitor(HttpUser):
    """Opens the sign-in page now and then and checks the backend is alive."""

    weight = 1
    wait_time = between(1, 3)

    @task(3)
    def sign_in_page(self) -> None:
        """The page a dealer opens at the start of a shift."""
        self.client.get("/login", name="visitor: /login")

    @task(1)
    def backend_ping(self) -> None:
        """The backend's liveness check, as a load balancer would call it."""
        self.client.get("/ping", name="visitor: /ping")
