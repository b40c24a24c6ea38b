"""One typed settings object, read from the environment (and an optional `.env` file).

Every value has an embedded default so `veles demo` runs with nothing configured: a SQLite file
under `.veles/`, the in-process bus, and a local Ray cluster. Production sets DATABASE_URL,
REDIS_URL, RAY_ADDRESS and real secrets. `VELES_ENV` is `production` unless set otherwise
(`veles demo` and the tests set `development`): there every process refuses to start on the
public development secret (`veles.services.preflight`).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(".veles")
# Public (it is in this file): accepted in development only; production refuses to start on it.
DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-change-me-0123456789"  # noqa: S105


class Environment(StrEnum):
    """How strict a process is about its configuration at start (`veles.services.preflight`)."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Runtime configuration; field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DATA_DIR / 'veles.db'}",
        description="SQLAlchemy URL; postgresql+psycopg://... in production.",
    )
    app_database_password: SecretStr | None = Field(
        default=None,
        description="`veles db create-roles` (and `veles db upgrade`) let the veles_app role log in with "
        "this password; the app's DATABASE_URL then names veles_app.",
    )
    redis_url: str | None = Field(
        default=None, description="Redis for the bus, rate limits and Reflex state; unset = in-process."
    )
    veles_redis_prefix: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$",
        description="Namespace of every Redis channel and key of this deployment (pub/sub ignores the "
        "database number, so deployments sharing a Redis need distinct ones); unset = derived from the "
        "database's name and address.",
    )
    ray_address: str | None = Field(
        default=None, description="Ray cluster to join; unset = start a local one."
    )
    veles_env: Environment = Field(
        default=Environment.PRODUCTION,
        description="production: every process refuses to start (exit 2) on unsafe secrets or a database "
        "role that bypasses row-level security; development: `veles demo` and the tests.",
    )
    ray_namespace: str = "veles"
    ray_num_cpus: int | None = Field(default=None, description="CPUs a local Ray cluster may use.")
    secret_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_SECRET_KEY),
        description="Signs access and refresh tokens, report links and SMS-code hashes; at least 32 bytes "
        "of random in production.",
    )
    secret_key_previous: SecretStr | None = Field(
        default=None,
        description="Comma-separated earlier SECRET_KEYs, newest first: what they signed is still "
        "accepted (never signed with) until SECRET_KEY_PREVIOUS_UNTIL.",
    )
    secret_key_previous_until: datetime | None = Field(
        default=None,
        description="End of a SECRET_KEY rotation's overlap (ISO 8601; UTC when no offset is given); "
        "unset or past: previous keys are refused.",
    )
    credentials_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated Fernet keys, newest first: encrypt MT5 credentials and TOTP seeds. "
        "Rotate by adding a new key in front, running rotate_all, then dropping the old key.",
    )
    simulator_password: SecretStr = Field(
        default=SecretStr("veles-demo"),
        description="The manager password the built-in simulated trade servers (sim://NAME) accept.",
    )
    access_token_minutes: int = 30
    refresh_token_days: int = Field(default=14, gt=0, description="A sign-in lasts this long unused.")
    login_limit: int = Field(
        default=10, ge=1,
        description="Sign-in attempts a minute per client IP and per e-mail, API and portal alike.",
    )
    sign_in_free_failures: int = Field(
        default=5, ge=1,
        description="Wrong passwords/codes for one e-mail from one IP before each further try must wait.",
    )
    sign_in_max_delay: int = Field(
        default=900, gt=0, description="Seconds: the cap of that wait, which doubles with each failure.",
    )
    temporary_password_hours: int = Field(
        default=72, gt=0,
        description="How long a new platform admin's temporary password works.",
    )
    invite_hours: int = Field(default=72, gt=0, description="How long an invitation's e-mailed link works.")
    signup_ip_limit: int = Field(default=5, ge=1, description="Sign-ups an hour from one client IP.")
    verify_email_hours: int = Field(default=48, gt=0, description="How long a sign-up's e-mailed link works.")
    trial_days: int = Field(default=14, gt=0, description="Length of a new tenant's Starter trial.")
    sms_code_minutes: int = Field(default=5, gt=0, description="How long a sign-in SMS code is valid.")
    api_ip_limit: int = Field(default=600, ge=1, description="API requests a minute from one client IP.")
    trusted_proxies: str = Field(
        default="", description="Comma-separated IPs or CIDRs of proxies whose X-Forwarded-For is believed."
    )
    max_request_bytes: int = Field(
        default=1_048_576, gt=0,
        description="Largest request body accepted (bytes); a bigger one is refused with 413 unparsed.",
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated browser origins allowed to call the backend cross-origin (CORS, "
        "sockets); unset = the portal's own origin (PUBLIC_URL, else http://localhost:FRONTEND_PORT).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token GET /metrics requires; unset = /metrics answers loopback callers only.",
    )
    alert_cooldown_seconds: float = Field(
        default=300.0, ge=0, le=86_400,
        description="A raise of the same rule on the same account (or symbol) within this many seconds "
        "of the first is folded into that alert (a count and the latest value); 0 = off.",
    )
    escalation_check_seconds: float = Field(
        default=15.0, gt=0, le=3600,
        description="How often alert delivery looks for critical alerts left unacknowledged past their "
        "tenant's escalation delay (tests and drills shorten it).",
    )
    publish_hz: float = Field(default=4.0, gt=0, description="How often aggregators publish book diffs.")
    gateway_interval: float = Field(default=0.25, gt=0, description="Seconds between simulated batches.")
    mt5_ca_bundle: str | None = Field(
        default=None,
        description="PEM file of a private CA trusted for MT5 Web API servers (a broker's own CA); "
        "unset: the system's trust store. Certificates are always verified.",
    )
    reconcile_every_s: float = Field(
        default=30.0, ge=0, le=86_400,
        description="How often each connection's account figures are compared with the MT5 server's own "
        "(user/account/get_batch); 0 turns reconciliation off.",
    )
    engine_hosts: int = Field(
        default=0, ge=0, description="Account host processes per tenant (0: per CPU or accounts_per_host)."
    )
    accounts_per_host: int = Field(
        default=0, ge=0, description="Accounts per host process when engine_hosts is 0 (1: one per account)."
    )
    tenant_hosts: int = Field(
        default=0, ge=0,
        description="Processes hosting tenants' supervisors and aggregators as logical actors, with one "
        "shared pool of account hosts (0: one per CPU of the cluster). Fixed for the cluster by the "
        "first process that starts a tenant (kept in Ray's key-value store), so every process finds "
        "a tenant in the same one.",
    )
    process_per_tenant: bool = Field(
        default=False,
        description="One supervisor and one aggregator process per tenant, each with its own account "
        "hosts (ENGINE_HOSTS, ACCOUNTS_PER_HOST), instead of tenant hosts.",
    )
    demo_accounts: int = Field(default=500, ge=1, description="Accounts of the demo's simulated broker.")
    demo_seed: int = 7
    demo_email: str = "demo@veles.local"
    demo_password: SecretStr = SecretStr("veles-demo")
    demo_webapi_password: SecretStr | None = Field(
        default=None,
        description="The manager password of `veles demo --via-webapi`'s simulated MT5 server "
        "(random per run when unset); the load test sets it to send the server trade operations.",
    )
    frontend_port: int = 3000
    public_url: str | None = Field(
        default=None,
        description="The portal's address as users reach it, for links in e-mails (password reset); "
        "unset = http://localhost:FRONTEND_PORT.",
    )
    backend_port: int = 8000
    # Outgoing messages (veles.services.messaging): SMS through Twilio, e-mail over SMTP.
    twilio_account_sid: str | None = Field(default=None, description="Unset: SMS is not configured.")
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = Field(default=None, description="E.164 sender, e.g. +15017122661.")
    twilio_api_url: str = Field(
        default="https://api.twilio.com", description="Twilio REST base URL; tests point it at a stub."
    )
    smtp_host: str | None = Field(default=None, description="Unset: e-mail is not configured.")
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Veles <veles@localhost>"
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection with STARTTLS.")
    messaging_timeout: float = Field(
        default=10.0, gt=0, description="Seconds before an SMTP or Twilio call is given up."
    )
    # Billing (veles.billing): Stripe subscriptions, webhooks and dunning.
    stripe_secret_key: SecretStr | None = Field(
        default=None, description="Stripe API key (sk_...); unset: billing is not configured.")
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        description="The webhook endpoint's signing secret (whsec_...); unset: webhooks refused.",
    )
    stripe_api_base: str = Field(
        default="https://api.stripe.com", description="Stripe API base URL; tests point it at a local fake.",
    )
    stripe_webhook_tolerance: int = Field(
        default=300, gt=0,
        description="Seconds a signed webhook stays acceptable (older: a replay, refused).",
    )
    stripe_timeout: float = Field(default=20.0, gt=0, description="Seconds before a Stripe call is given up.")
    billing_grace_days: int = Field(
        default=7, ge=0, description="Days past due (or after the trial) before the portal turns read-only.")
    billing_suspend_days: int = Field(
        default=14, ge=0, description="Days past due (or after the trial) before the tenant is suspended.")

    @property
    def redis_prefix(self) -> str:
        """What every Redis channel and key of this deployment starts with (`redis_name`)."""
        return deployment_prefix(self.database_url, self.veles_redis_prefix)

    @property
    def portal_url(self) -> str:
        """Where users reach the portal: PUBLIC_URL, else the local front end."""
        return (self.public_url or f"http://localhost:{self.frontend_port}").rstrip("/")

    @property
    def allowed_origins(self) -> list[str]:
        """The browser origins the backend answers cross-origin (CORS_ORIGINS, else the portal's)."""
        listed = [origin.strip().rstrip("/") for origin in self.cors_origins.split(",") if origin.strip()]
        if listed:
            return listed
        parts = urlsplit(self.portal_url)
        return [f"{parts.scheme}://{parts.netloc}"]

    @property
    def uses_redis(self) -> bool:
        """Whether a Redis server is configured (otherwise the in-process bus serves)."""
        return bool(self.redis_url)


def deployment_prefix(database_url: str, explicit: str | None = None) -> str:
    """The Redis namespace of the deployment whose database is `database_url`, ending in ":".

    `explicit` (VELES_REDIS_PREFIX) wins. Otherwise the database's name plus a short hash of where it
    lives (scheme, host, port, path; never the credentials, so a password change keeps the
    namespace): two deployments share Redis channels only if they share their database."""
    if explicit:
        return explicit if explicit.endswith(":") else f"{explicit}:"
    parts = urlsplit(database_url)
    name = PurePosixPath(parts.path).stem or "veles"
    where = f"{parts.scheme}://{parts.hostname or ''}:{parts.port or ''}{parts.path}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:8]
    return f"veles:{re.sub(r'[^A-Za-z0-9._-]', '_', name)[:40]}-{digest}:"


def redis_name(prefix: str, name: str) -> str:
    """A Redis channel or key of this deployment: the one place names get the deployment prefix,
    so two deployments (or test runs) sharing a Redis server never read each other's messages."""
    return f"{prefix}{name}"


def engine_prefix(database_url: str | None) -> str:
    """The prefix an engine actor uses: it is handed the database URL, not the settings, so the
    namespace is derived here from that URL (or VELES_REDIS_PREFIX, which `ray_runtime.connect`
    passes to every actor of the job)."""
    settings = get_settings()
    return deployment_prefix(database_url or settings.database_url, settings.veles_redis_prefix)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once: settings do not change while a process runs."""
    return Settings()
