"""Domain errors: a small hierarchy, each with a stable machine-readable ``rule``.

The API maps each class to an RFC 9457 problem once (api/problems.py); nothing here knows HTTP.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command was refused. ``rule`` names the rule; ``field`` the input it is about."""

    kind = "refused"

    def __init__(self, detail: str, *, rule: str, field: str | None = None,
                 errors: list[tuple[str, str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.rule = rule
        self.field = field
        self.errors = errors or []  # (field, rule, message) for every problem found


class InvalidInput(DomainError):
    kind = "invalid-input"


class BadArgument(DomainError):
    """A query argument is out of its range (a malformed request, not a refused command)."""

    kind = "bad-argument"


class NotFound(DomainError):
    kind = "not-found"


class Conflict(DomainError):
    kind = "conflict"


class Busy(Conflict):
    """The same request is in flight: retry after ``retry_after`` seconds."""

    def __init__(self, detail: str, *, rule: str, field: str | None = None,
                 retry_after: int) -> None:
        super().__init__(detail, rule=rule, field=field)
        self.retry_after = retry_after


class Forbidden(DomainError):
    kind = "forbidden"


class StaleVersion(DomainError):
    """The caller's expected version (If-Match) is not the stream's current version."""

    kind = "stale-version"

    def __init__(self, detail: str, *, current: int) -> None:
        super().__init__(detail, rule="if-match")
        self.current = current


class IntegrityFailure(DomainError):
    """Stored facts disagree with what was recorded about them (a published result that no
    longer matches its fingerprint, a log shorter than its last checkpoint): a server-side
    failure an operator must look at, never answered with the doubtful data."""

    kind = "integrity"


class Unavailable(DomainError):
    """The service refuses writes until an operator acts (a ledger found rolled back or forked):
    retrying does not help."""

    kind = "unavailable"
