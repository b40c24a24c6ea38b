"""The REST API, a FastAPI app mounted in front of the Reflex backend (`rx.App(api_transformer=...)`)."""

from veles.api.app import create_api

__all__ = ["create_api"]
