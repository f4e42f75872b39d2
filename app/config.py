"""The one Settings object (pydantic-settings); every setting is documented in .env.example."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_JWT_SECRET = "demo-only-secret-change-me-0123456789abcdef"  # noqa: S105 - refused in production
# the key of the actual controllers' ID-number hashes (SKD-F4, XB-N2); refused in production
DEFAULT_PERSON_ID_KEY = "demo-only-person-id-key-change-me-0123456789"
DEFAULT_DATABASE_URL = "sqlite:///./var/ledger.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    app_env: Literal["demo", "production"] = Field(
        "demo", description="demo: fixed clock and demo data allowed; production: both refused"
    )
    database_url: str = Field(
        DEFAULT_DATABASE_URL, description="SQLAlchemy URL (sqlite / postgresql)"
    )
    migration_database_url: str | None = Field(
        None,
        description="the URL `ledger migrate` connects with: the role that owns the schema "
        "(PostgreSQL); unset: DATABASE_URL",
    )
    db_app_role: str | None = Field(
        None,
        pattern=r"^([A-Za-z_][A-Za-z0-9_$]{0,62})?$",
        description="PostgreSQL: the role the service runs as, which owns nothing; `ledger "
        "migrate` grants it what the service needs and no more (default: the user of "
        "DATABASE_URL when MIGRATION_DATABASE_URL names another user)",
    )
    db_pool_size: int = Field(10, ge=1, le=200)
    db_pool_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="how long a request waits for a pooled connection before 503 service_busy",
    )
    db_lock_timeout_ms: int = Field(
        5000,
        ge=0,
        le=600_000,
        description="PostgreSQL: the longest a request waits for a lock before 503 "
        "service_busy (0: no limit)",
    )
    max_in_flight: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="requests one worker runs at once (default 40, the worker's thread "
        "pool; those beyond the database pool wait up to DB_POOL_TIMEOUT_SECONDS for a "
        "connection); more wait ADMISSION_WAIT_MS, then 503 service_busy",
    )
    client_concurrency: int = Field(
        8,
        ge=1,
        le=1000,
        description="requests one client (user, or address without a valid token) may have "
        "in flight per worker; as many more wait CLIENT_WAIT_MS, then 429 too_many_requests; "
        "beyond those, 429 at once",
    )
    admission_wait_ms: int = Field(
        1000, ge=0, le=30_000, description="how long a request waits for a free worker slot"
    )
    client_wait_ms: int = Field(
        250,
        ge=0,
        le=30_000,
        description="how long a request waits for one of its client's slots",
    )
    input_date_min: date = Field(
        date(1950, 1, 1),
        ge=date(1900, 1, 1),
        le=date(2100, 1, 1),
        description="the earliest date a request body may carry (an enterprise's founding)",
    )
    input_years_ahead: int = Field(
        50,
        ge=1,
        le=100,
        description="how many years ahead of today a request body's date may lie (a maturity)",
    )
    server_timing: bool = Field(
        False,
        description="answer with a Server-Timing header: the request's time, its time in "
        "SQL and its statement count (for benchmarks and browser developer tools; it tells "
        "callers how the service spends its time)",
    )
    gc_gen0_threshold: int = Field(
        50_000,
        ge=0,
        le=10_000_000,
        description="the serving process's first garbage-collection threshold (Python's "
        "default is 700); at startup the objects alive are frozen out of collections. 0 "
        "leaves the collector as Python sets it (app/kit/gc_tuning.py)",
    )
    db_pool_pre_ping: bool = Field(
        False, description="test each pooled connection before use (one more round trip)"
    )
    jwt_secret: SecretStr = Field(SecretStr(DEFAULT_JWT_SECRET), description="HS256 signing key")
    person_id_key: SecretStr = Field(
        SecretStr(DEFAULT_PERSON_ID_KEY),
        description="HMAC-SHA256 key of the actual controllers' resident ID numbers (only "
        "the keyed hash is stored); set once per deployment and never changed",
    )
    ledger_checkpoint_key: SecretStr | None = Field(
        None,
        min_length=32,
        description="HMAC key of the chain checkpoints kept outside the database (`ledger "
        "checkpoint`, `ledger verify --checkpoints`); kept away from the database",
    )
    jwt_ttl_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600)
    jwt_issuer: str = "risk-fund-ledger"
    login_failures_per_user: int = Field(
        5, ge=1, le=1000, description="failed log-ins of one username in the window before 429"
    )
    login_failures_per_address: int = Field(
        20, ge=1, le=10_000, description="failed log-ins from one address in the window before 429"
    )
    login_failure_window_seconds: int = Field(
        900, ge=10, le=86_400, description="the window failed log-ins are counted in"
    )
    app_today: date | None = Field(
        None, description="fixed business date (SPEC M-5), not in production"
    )
    app_admin_username: str | None = None
    app_admin_password: SecretStr | None = None
    max_request_bytes: int = Field(25 * 1024 * 1024, ge=1024, description="any request body")
    max_header_bytes: int = Field(
        32 * 1024, ge=4096, le=1024 * 1024, description="all request header lines together"
    )
    max_json_depth: int = Field(
        32, ge=4, le=512, description="how deeply a JSON body's arrays and objects may nest"
    )
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="one uploaded document")
    upload_content_types: list[str] = Field(
        default_factory=lambda: ["application/pdf", "image/jpeg", "image/png", "application/zip"]
    )
    upload_dir: str = "./var/uploads"
    calendar_unpublished: Literal["provisional", "refuse"] = Field(
        "provisional",
        description="a working day in a year whose calendar is not published (SPEC M-3): "
        "provisional (weekdays minus statutory holidays, every deadline marked provisional) "
        "or refuse (422 calendar_year_unsupported)",
    )
    batch_job_worker: bool = Field(
        True,
        description="run the batch jobs' worker in this process (POST /loans/batch with "
        "Prefer: respond-async); a process started with a session factory of its own "
        "(the tests) drives jobs itself",
    )
    batch_job_chunk: int = Field(
        1000, ge=1, le=10_000, description="items a batch job files per transaction"
    )
    batch_job_poll_seconds: float = Field(
        1.0, gt=0, le=60, description="how often an idle worker looks for queued batch jobs"
    )
    batch_job_stale_seconds: int = Field(
        120,
        ge=5,
        le=86_400,
        description="a running batch job whose worker committed nothing for this long is "
        "taken back and resumed after its last committed chunk",
    )
    idempotency_retention_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="how long an Idempotency-Key's answer is kept; `ledger "
        "purge-expired` removes older ones (run it daily)",
    )
    log_level: str = "INFO"
    log_json: bool = True
    metrics_token: SecretStr | None = Field(
        None,
        min_length=16,
        description="bearer token GET /metrics requires; unset: /metrics is open in demo "
        "and answers 404 in production",
    )

    @model_validator(mode="after")
    def _production_guards(self) -> Settings:
        if self.app_env == "production":
            problems = []
            secret = self.jwt_secret.get_secret_value()
            if secret == DEFAULT_JWT_SECRET or len(secret) < 32:
                problems.append(
                    "JWT_SECRET must be set to a private value of at least 32 characters"
                )
            key = self.person_id_key.get_secret_value()
            if key == DEFAULT_PERSON_ID_KEY or len(key) < 32:
                problems.append(
                    "PERSON_ID_KEY must be set to a private value of at least 32 characters"
                )
            if self.app_today is not None:
                problems.append(
                    "APP_TODAY (a fixed business date) is refused in production (SPEC M-5)"
                )
            if (
                self.app_admin_password is not None
                and len(self.app_admin_password.get_secret_value()) < 12
            ):
                problems.append("APP_ADMIN_PASSWORD must have at least 12 characters in production")
            if problems:
                raise ValueError("; ".join(problems))
        return self

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def migration_url(self) -> str:
        """Where `ledger migrate` connects: MIGRATION_DATABASE_URL, else DATABASE_URL."""
        return self.migration_database_url or self.database_url

    @property
    def app_role(self) -> str | None:
        """The role `ledger migrate` grants the service's privileges to: DB_APP_ROLE, else
        the user of DATABASE_URL when the migration URL names another user (PostgreSQL);
        None: the service runs as the schema's owner (SQLite, or one URL for both)."""
        if self.db_app_role:
            return self.db_app_role
        from sqlalchemy.engine import make_url

        from app.db import normalize_url

        service, owner = (
            make_url(normalize_url(u)) for u in (self.database_url, self.migration_url)
        )
        if service.get_backend_name() != "postgresql" or not service.username:
            return None
        return service.username if service.username != owner.username else None


@lru_cache
def get_settings() -> Settings:
    return Settings()
