"""One typed settings object, read from ``KAOPING_*`` environment variables only.

The eventsourcing library also reads ``os.environ`` (and looks up ``<APP>_``-prefixed keys
first, which for an application named Kaoping collide with ours). Its settings are therefore
built from this object alone, and start-up refuses to run while any library key is present in
the environment: ``POSTGRES_ENABLE_DB_FUNCTIONS`` alone would silently break log order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal

import msgspec

PREFIX = "KAOPING_"

# Keys the eventsourcing library (9.5) reads from its environment, plain or ``KAOPING_``-prefixed.
LIBRARY_KEYS = frozenset(
    {
        "AGGREGATE_CACHE_FASTFORWARD",
        "AGGREGATE_CACHE_FASTFORWARD_SKIPPING",
        "AGGREGATE_CACHE_MAXSIZE",
        "APPLICATION_RECORDER_TOPIC",
        "CIPHER_KEY",
        "CIPHER_TOPIC",
        "COMPRESSOR_TOPIC",
        "CREATE_TABLE",
        "DEEPCOPY_FROM_AGGREGATE_CACHE",
        "EVENTSOURCING_DISABLE_REDEFINITION_CHECK",
        "FACTORY_TOPIC",
        "INFRASTRUCTURE_FACTORY",
        "IS_SNAPSHOTTING_ENABLED",
        "MAPPER_TOPIC",
        "ORIGINATOR_ID_TYPE",
        "PERSISTENCE_MODULE",
        "POSTGRES_CONNECT_TIMEOUT",
        "POSTGRES_CONN_MAX_AGE",
        "POSTGRES_DBNAME",
        "POSTGRES_ENABLE_DB_FUNCTIONS",
        "POSTGRES_GET_PASSWORD_TOPIC",
        "POSTGRES_HOST",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT",
        "POSTGRES_LOCK_TIMEOUT",
        "POSTGRES_MAX_OVERFLOW",
        "POSTGRES_MAX_WAITING",
        "POSTGRES_PASSWORD",
        "POSTGRES_POOL_SIZE",
        "POSTGRES_PORT",
        "POSTGRES_PRE_PING",
        "POSTGRES_SCHEMA",
        "POSTGRES_USER",
        "PROCESS_RECORDER_TOPIC",
        "SINGLE_ROW_TRACKING",
        "SQLITE_DBNAME",
        "SQLITE_LOCK_TIMEOUT",
        "TRACKING_RECORDER_TOPIC",
        "TRANSCODER_TOPIC",
        "TZINFO_TOPIC",
    }
)

RoleName = Annotated[str, msgspec.Meta(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class SettingsError(ValueError):
    """Invalid configuration; the message names the environment variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything configurable, each field read from ``KAOPING_<FIELD>``."""

    database_url: str = "sqlite:///var/kaoping.db"
    # Connection used by `kaoping migrate` (owner or superuser); defaults to database_url.
    migrate_database_url: str | None = None
    db_owner_role: RoleName = "kaoping_owner"
    db_app_role: RoleName = "kaoping_app"
    # Set by `kaoping migrate` on the application role when given (e.g. in docker-compose).
    db_app_password: str | None = None
    db_pool_size: Positive = 4
    host: str = "127.0.0.1"
    port: Port = 8000
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # "auto": readable lines on a terminal, JSON lines otherwise (files, pipes, log collectors).
    log_format: Literal["auto", "json", "console"] = "auto"
    signing_key_path: str = "var/ledger-signing.key"
    token_key_path: str = "var/token-signing.key"  # noqa: S105 -- a path, not a secret
    token_ttl_seconds: Annotated[int, msgspec.Meta(ge=30, le=86400)] = 900
    token_issuer: str = "kaoping"  # noqa: S105 -- JWT iss claim
    token_audience: str = "kaoping-api"  # noqa: S105 -- JWT aud claim
    # An external identity provider's JWKS (public keys), trusted beside our own token keys.
    token_jwks_path: str | None = None
    # The audit console (/console): the key its session cookies are sealed with (generated on
    # first use, mode 0600) and how long a sign-in lasts (a working morning).
    console_key_path: str = "var/console-session.key"
    console_session_seconds: Annotated[int, msgspec.Meta(ge=60, le=86400)] = 14400
    ledger_origin: Annotated[str, msgspec.Meta(pattern=r"^[^\s+]+$")] = "kaoping.example/demo-city"
    # A checkpoint is signed at most this often while the log grows (and on demand).
    checkpoint_interval_seconds: Annotated[float, msgspec.Meta(ge=0.2, le=3600)] = 5.0
    # "inprocess": the API process follows the log itself (embedded default);
    # "external": a separate `kaoping project` worker does (production).
    projections: Literal["inprocess", "external"] = "inprocess"
    # Events read per page and applied to every read model in one transaction. 2000 was the
    # fastest of 1000/2000/4000 for a 1M-event rebuild (bench/replay.py; docs/operations.md).
    projection_page_size: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 2000
    # A read model built from zero over at least this many events is loaded without its
    # indexes and indexed once at the head (PostgreSQL; projections/bulk.py). units.v1 alone
    # from zero (2 cores, shared_buffers 128 MB, 2026-12-07): 300,000 units 3.3-3.6 s with
    # its indexes, 3.7-3.9 s deferred (the index build then runs alone, where index inserts
    # overlapped the follower's own work); 600,000: 7.0-8.7 s, 5.5-6.3 s deferred; 1,000,000:
    # 13.6-15.3 s, 11.2-11.4 s (the random-id primary key no longer fits in memory). Raise it
    # with shared_buffers (docs/operations.md).
    projection_bulk_min_events: Annotated[int, msgspec.Meta(ge=1)] = 500_000
    timezone: str = "Asia/Shanghai"
    # Larger request bodies are refused with 413 (a bulk import of a city fits well within).
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 4_000_000
    # The largest document (工作总结, 述职述廉报告, 自我评价) accepted by its upload route, which
    # has this limit instead of max_body_bytes: a 30-page PDF report with scans fits within.
    document_max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1_000_000_000)] = 20_000_000
    # The demo city (示范市, ~12,000 events that can never be removed from the log). Unset: it
    # loads only into an empty embedded SQLite store, by `kaoping serve` (`make run`); never
    # into PostgreSQL, nor by `kaoping project` or any other command, unless set to true.
    demo: bool | None = None
    # How long a pending Idempotency-Key is held for the request that reserved it: after a
    # crash (kill -9) a retry performs the request once this has passed. Well above the slowest
    # write (a bulk import, a publication: seconds), well below a client's patience.
    idempotency_lease_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    # How often housekeeping runs (expired Idempotency-Keys are forgotten).
    housekeeping_interval_seconds: Annotated[float, msgspec.Meta(ge=1)] = 3600.0
    # Per-principal request rate (token bucket, per API process): 429 + Retry-After beyond it.
    # Sized far above a person's use and above a system's bulk sync (one request per import).
    rate_limit_per_second: Annotated[float, msgspec.Meta(gt=0)] = 50.0
    rate_limit_burst: Annotated[int, msgspec.Meta(ge=1)] = 500
    # Anonymous callers (public session reads, the ballot page, casting), per client address
    # (token bucket, per API process). The burst lets a polling room of ~100 voters behind one
    # NAT open the page and cast at once; the rate (300 a minute) is far above a room's pace.
    anonymous_rate_per_second: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    anonymous_burst: Annotated[int, msgspec.Meta(ge=1)] = 200
    # A refused anonymous request is answered after this delay (at most its Retry-After): a
    # flood looping on N connections then costs N requests per delay, not the event loop.
    anonymous_throttle_delay_seconds: Annotated[float, msgspec.Meta(ge=0, le=30)] = 1.0
    # Proxies whose X-Forwarded-For is believed (comma-separated addresses or CIDRs); from any
    # other peer the header is ignored. Empty: the TCP peer is the client.
    trusted_proxies: str = ""
    # Where the request buckets (per principal, per anonymous client) live. "auto": in the
    # database on PostgreSQL (one budget shared by every API process; service/throttle.py),
    # in the process on SQLite. "process": per process (N processes allow N times the rate).
    rate_limit_store: Literal["auto", "process", "database"] = "auto"
    # A read-only API process on a streaming replica (hot standby) of the primary: it serves
    # reads (public results, the ledger and its proofs, evidence to those allowed it), refuses
    # every write with 503 (rule replica.read-only), runs no background work, keeps its
    # request buckets in the process (a standby cannot write), and answers a min_position the
    # replica has not replayed yet by waiting, then 503 + Retry-After (rule replica.behind).
    read_only: bool = False
    # Where writes go, named in the read-only refusal (e.g. https://kaoping.example.gov.cn).
    primary_url: Annotated[str, msgspec.Meta(
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")] | None = None
    # Refused ballot casts (wrong/revoked credentials) per client and session, and per session
    # from all clients (each client adding at most its own budget), in a sliding window.
    ballot_refusals_per_client: Annotated[int, msgspec.Meta(ge=1)] = 20
    ballot_refusals_per_session: Annotated[int, msgspec.Meta(ge=1)] = 200
    ballot_refusal_window_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    # Refused reads of restricted material are recorded as one counted event per principal,
    # material and rule per window of this length (not one event per refusal).
    refused_read_window_seconds: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 60
    # Within a window, refusals are counted apart for up to this many distinct (year, subject,
    # case) asked for, then together under "*": a caller varying the path (a bounded 50/s)
    # adds at most this many events per window. 20 covers an investigator's working set.
    refused_read_scopes: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20
    # Webhooks (service/webhooks.py). Loopback and private targets are refused unless allowed:
    # a subscription must not become a probe of internal networks.
    webhook_allow_loopback: bool = False
    webhook_allow_private: bool = False
    webhook_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 10.0
    webhook_max_response_bytes: Annotated[int, msgspec.Meta(ge=0)] = 65536
    # Retried with full-jitter backoff from the base up to the cap, for at most this long after
    # the first attempt (3 days: Stripe's published retry window), then parked as failed.
    webhook_retry_base_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    webhook_retry_cap_seconds: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
    webhook_retry_for_seconds: Annotated[float, msgspec.Meta(gt=0)] = 259_200.0
    webhook_poll_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 1.0
    # The address voters reach this server at, for the vote URLs and QR codes of credential
    # sheets (e.g. https://kaoping.example.gov.cn). Unset: the issuing request's own base URL.
    public_base_url: Annotated[str, msgspec.Meta(
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")] | None = None

    @property
    def engine(self) -> Literal["sqlite", "postgres"]:
        return "sqlite" if self.database_url.startswith("sqlite:") else "postgres"

    @property
    def demo_on_serve(self) -> bool:
        """Whether `kaoping serve` loads the demo city into an empty store."""
        return self.engine == "sqlite" if self.demo is None else self.demo

    @property
    def shared_rate_limit(self) -> bool:
        """Whether the request buckets are shared through the database (PostgreSQL only)."""
        if self.rate_limit_store == "auto":
            return self.engine == "postgres" and not self.read_only
        return self.rate_limit_store == "database"

    @property
    def sqlite_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))

    def with_overrides(self, **changes: object) -> Settings:
        return msgspec.structs.replace(self, **changes)


_FIELD_RE = re.compile(r"`\$\.(\w+)`")


def _env_name(field: str) -> str:
    return PREFIX + field.upper()


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse library keys (plain or prefixed) and unknown ``KAOPING_`` keys."""
    known = {_env_name(f) for f in Settings.__struct_fields__}
    for key in sorted(environ):
        bare = key.removeprefix(PREFIX)
        if key in LIBRARY_KEYS or (key.startswith(PREFIX) and bare in LIBRARY_KEYS):
            msg = (
                f"{key} is set in the environment: eventsourcing settings are built only from "
                f"Kaoping's own settings; unset {key}"
            )
            raise SettingsError(msg)
        if key.startswith(PREFIX) and key not in known and not key.startswith("KAOPING_TEST_"):
            msg = f"{key} is not a Kaoping setting (known: {', '.join(sorted(known))})"
            raise SettingsError(msg)


def _check_url(settings: Settings) -> None:
    for field in ("database_url", "migrate_database_url"):
        url = getattr(settings, field)
        if url is None:
            continue
        if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
            continue
        if url.startswith(("postgresql://", "postgres://")):
            continue
        msg = (
            f"{_env_name(field)}={url!r}: expected sqlite:///PATH or "
            "postgresql://USER@HOST[:PORT]/DBNAME"
        )
        raise SettingsError(msg)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build settings from an environment mapping; raise one clear error naming the variable."""
    check_environment(environ)
    raw: dict[str, object] = {}
    for field in Settings.__struct_fields__:
        value = environ.get(_env_name(field))
        if value is not None:
            raw[field] = value
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        match = _FIELD_RE.search(str(exc))
        name = _env_name(match.group(1)) if match else "a KAOPING_ variable"
        value = environ.get(name, "")
        reason = str(exc).split(" - at ")[0]
        msg = f"{name}={value!r} is invalid: {reason}"
        raise SettingsError(msg) from None
    _check_url(settings)
    _check_proxies(settings)
    return settings


def _check_proxies(settings: Settings) -> None:
    for part in settings.trusted_proxies.split(","):
        try:
            if part.strip():
                ip_network(part.strip(), strict=False)
        except ValueError:
            msg = (f"{_env_name('trusted_proxies')}={settings.trusted_proxies!r}: {part.strip()!r}"
                   " is not an address or CIDR (e.g. 10.0.0.0/8,127.0.0.1)")
            raise SettingsError(msg) from None
