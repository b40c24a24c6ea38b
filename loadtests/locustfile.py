"""Locust: people opening the portal. `locust -f loadtests/locustfile.py --host http://localhost:3000`.

Measures what a visitor's browser fetches before the live connection opens: the sign-in page and
the backend's health ping. Live dashboard sessions (socket.io) are measured by their own scenario.
"""

from __future__ import annotations

from locust import HttpUser, between, task


class PortalVisitor(HttpUser):
    """Opens the sign-in page now and then and checks the backend is alive."""

    wait_time = between(1, 3)

    @task(3)
    def sign_in_page(self) -> None:
        """The page a dealer opens at the start of a shift."""
        self.client.get("/login", name="/login")

    @task(1)
    def backend_ping(self) -> None:
        """The backend's liveness check, as a load balancer would call it."""
        self.client.get("/ping", name="/ping")
