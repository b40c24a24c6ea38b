"""Reflex configuration: ports and Redis come from the same settings as the rest of Veles."""

import os

import reflex as rx
from reflex.constants import StateManagerMode
from reflex.plugins.sitemap import SitemapPlugin

from veles.config import get_settings

_settings = get_settings()

if _settings.redis_url:
    # Opportunistic state locks: a worker that took a tab's Redis lock keeps it and the tab's state
    # in memory while no other worker asks for it (Reflex flushes it to Redis when one does, and
    # after the hold time), instead of a lock, a read and a write in Redis for every update a live
    # page's stream applies. The tab's own events and streams run in the worker holding its socket.
    # Set before Reflex makes its state manager, which reads it; the environment can still say false.
    os.environ.setdefault("REFLEX_OPLOCK_ENABLED", "true")
    # A bounded pool of Redis connections per worker, reused. Unbounded, every burst of tabs
    # connecting or leaving (each a few Redis commands at once) opened new connections, and redis-py
    # reads its own package metadata for each new one (a scan of sys.path): at 500 sessions a
    # worker spent nearly all its time there and stopped answering sockets. Waiting for a free
    # connection stays well within the state lock's expiry below.
    os.environ.setdefault("REFLEX_REDIS_MAX_CONNECTIONS", "64")
    os.environ.setdefault("REFLEX_REDIS_POOL_TIMEOUT", "20s")

config = rx.Config(
    app_name="veles_ui",
    frontend_port=_settings.frontend_port,
    backend_port=_settings.backend_port,
    # The address the browser opens the event socket on. Reflex swaps a localhost address for the
    # page's host, but over https it also drops the port (assumes 443), so behind a TLS proxy on
    # any other port (https://risk.example.com:8443) the socket missed the proxy: PUBLIC_URL, when
    # set, is where the browser reaches the backend (the proxy forwards /_event; deploy/nginx.conf).
    api_url=_settings.portal_url if _settings.public_url else f"http://localhost:{_settings.backend_port}",
    deploy_url=f"http://localhost:{_settings.frontend_port}",
    # Reflex keeps per-tab state in Redis when one is configured, so several workers can share it.
    redis_url=_settings.redis_url,
    state_manager_mode=StateManagerMode.REDIS if _settings.redis_url else StateManagerMode.MEMORY,
    # A handler holds its tab's Redis state lock until it returns, and Reflex drops every write of a
    # handler that outlived the lock (LockExpiredError: the page shows neither notice nor error).
    # "Add and test" checks the trade server and then tells the engine (up to 10 s by itself), so on
    # a loaded machine Reflex's default 10 s ran out and the outcome was lost; only the same tab's
    # next events wait on this lock, never other sessions.
    redis_lock_expiration=60_000,
    # Cross-origin calls and event sockets only from the configured origins (CORS_ORIGINS), never "*".
    cors_allowed_origins=_settings.allowed_origins,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    default_color_mode="dark",
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="medium"))],
    disable_plugins=[SitemapPlugin],
)
