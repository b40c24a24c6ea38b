"""What the REST scenarios share: a signed-in HttpUser whose requests are named by scenario."""

from __future__ import annotations

from typing import Any

from locust import HttpUser
from sign_in import DEALER, access_token


class RestUser(HttpUser):
    """Calls the API with a bearer token of `who`; a non-2xx answer is a failure of that request."""

    abstract = True
    scenario = ""
    who = DEALER

    def on_start(self) -> None:
        assert self.host is not None
        self.token = access_token(self.host, self.who)

    def call(self, method: str, path: str, name: str, **kwargs: Any) -> Any:
        """The answer's JSON (None for an empty body), or None after reporting a failure."""
        with self.client.request(method, path, name=f"{self.scenario}: {name}", catch_response=True,
                                 headers={"Authorization": f"Bearer {self.token}"}, **kwargs) as response:
            if not 200 <= response.status_code < 300:
                response.failure(f"{response.status_code} {response.text[:200]}")
                return None
            return response.json() if response.content else None
