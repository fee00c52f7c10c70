"""Webhooks: subscriptions per client, deliveries signed per Standard Webhooks, retried, logged.

A deliverer loop (in-process for the embedded default, ``kaoping deliver`` in production) does
two things, each in short transactions, so a restart loses nothing:

1. *Queue*: for each active subscription, read the feed after the subscription's position *as
   the subscriber's role* (the same filter as ``GET /api/v1/events``), insert one pending
   delivery per matching event, and advance the position — in one transaction.
2. *Deliver*: claim due deliveries (a lease: ``next_attempt_at`` is pushed past the timeout by a
   conditional UPDATE, so two deliverers never send the same attempt), POST the CloudEvent, and
   record the outcome. Failures are retried with exponential backoff and full jitter until
   ``webhook_retry_for_seconds`` after the first attempt, then parked as ``failed``; a client can
   ask for redelivery. A crash between sending and recording means the event is sent again with
   the same ``webhook-id``: at-least-once, as Standard Webhooks expects receivers to handle.

A client can pause a subscription (its events are still queued, none is claimed for sending;
on resume the backlog goes out in queue order, which is log order), and delete it: the row is
deactivated, never removed, its pending deliveries are cancelled and its log stays readable.

The URL guard (no requests into private networks) and the signing are in
``service/webhook_guard.py``.
"""

from __future__ import annotations

import random
import secrets
import threading
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import structlog

from domain.errors import Conflict, InvalidInput, NotFound, StaleVersion
from projections.follower import head_position
from service.feed import catalogue, page
from service.principals import Principal, Role
from service.webhook_guard import Resolver, UrlPolicy, check_url, new_secret, resolve, sign

if TYPE_CHECKING:
    from uuid import UUID

    from eventsourcing.persistence import Mapper

    from service.clock import Clock
    from service.db import Cursor, Database
    from service.settings import Settings

log = structlog.get_logger("kaoping.webhooks")

# --- subscriptions and deliveries -------------------------------------------------------------

class Subscription(msgspec.Struct, kw_only=True):
    id: str
    url: str
    event_types: list[str]  # empty: every type the subscriber's role may see
    after_position: int  # events up to this log position have been queued
    active: bool  # false once deleted: nothing more is queued or sent
    paused: bool  # events are queued but not sent until resumed
    created_at: str
    deleted_at: str | None
    version: int  # the ETag: If-Match on every change
    # Set when the credential that subscribed was revoked or expired: nothing is queued or sent
    # from then on, and nothing resumes it (subscribe again with a live credential).
    suspended_at: str | None = None
    suspended_reason: str | None = None


_SUB_COLUMNS = ("id, url, event_types, after_position, active, created_at, paused, deleted_at, "
                "version, suspended_at, suspended_reason")
_DELIVERY_COLUMNS = ("id, subscription_id, position, state, event_type, attempts, "
                     "next_attempt_at, last_status, last_error, delivered_at")


class Delivery(msgspec.Struct, kw_only=True):
    id: int
    webhook_id: str
    position: int
    event_type: str
    state: str  # pending | delivered | failed | cancelled (its subscription was deleted)
    attempts: int
    next_attempt_at: float | None  # seconds since the epoch, while pending
    last_status: int | None
    last_error: str | None
    delivered_at: str | None


def _subscription(row: Any) -> Subscription:
    return Subscription(id=row[0], url=row[1], event_types=msgspec.json.decode(row[2]),
                        after_position=row[3], active=bool(row[4]), created_at=row[5],
                        paused=bool(row[6]), deleted_at=row[7], version=row[8],
                        suspended_at=row[9], suspended_reason=row[10])


def _delivery(row: Any) -> Delivery:
    state = row[3]
    return Delivery(id=row[0], webhook_id=f"{row[1]}.{row[2]}", position=row[2],
                    event_type=row[4], state=state, attempts=row[5],
                    next_attempt_at=row[6] if state == "pending" else None, last_status=row[7],
                    last_error=row[8], delivered_at=row[9])


def _suspended(sub: Subscription) -> Conflict:
    msg = (f"webhook subscription {sub.id} was suspended at {sub.suspended_at} "
           f"({sub.suspended_reason}); it never resumes: subscribe again")
    return Conflict(msg, rule="webhook.subscription.suspended")


def _replays_last_change(cur: Cursor, sub_id: str, key: str | None, fingerprint: str) -> bool:
    """Whether ``key`` is the Idempotency-Key of the subscription's last change (a retry to
    replay); the same key with another request is refused."""
    cur.execute("SELECT change_key, change_fingerprint FROM kaoping_webhook_subscriptions "
                "WHERE id = %s", (sub_id,))
    last = cur.fetchone()
    if key is None or last is None or last[0] != key:
        return False
    if last[1] != fingerprint:
        raise _key_reused()
    return True


def _key_reused() -> InvalidInput:
    msg = "this Idempotency-Key was used with a different request"
    return InvalidInput(msg, rule="idempotency-key.reused", field="Idempotency-Key")


class Webhooks:
    def __init__(self, db: Database, mapper: Mapper[UUID], settings: Settings, clock: Clock,
                 *, resolver: Resolver = resolve, rng: random.Random | None = None) -> None:
        self.db, self.mapper, self.settings, self.clock = db, mapper, settings, clock
        self.policy = UrlPolicy(settings.webhook_allow_loopback, settings.webhook_allow_private)
        self.resolver = resolver
        self.rng = rng or random.SystemRandom()
        self._wake = threading.Event()

    # -- the API side --

    def subscribe(self, principal: Principal, url: str, event_types: list[str],
                  after: int | None, key: str | None, fingerprint: str,
                  ) -> tuple[Subscription, str, bool]:
        """Create a subscription; return it, its secret, and whether this was a replay."""
        known = catalogue()
        for i, name in enumerate(event_types):
            if name not in known or principal.role.value not in known[name]["audience"]:
                msg = f"{name!r} is not an event type your role receives (see the catalogue)"
                raise InvalidInput(msg, rule="webhook.event-type", field=f"event_types[{i}]")
        check_url(url, self.policy, self.resolver)
        with self.db.write() as cur:
            if key is not None:
                cur.execute(f"SELECT {_SUB_COLUMNS}, secret, fingerprint FROM "  # noqa: S608
                            "kaoping_webhook_subscriptions WHERE owner = %s AND "
                            "idempotency_key = %s", (principal.id, key))
                row = cur.fetchone()
                if row is not None:
                    if row[12] != fingerprint:
                        raise _key_reused()
                    return _subscription(row), row[11], True
            head = head_position(cur)
            start = head if after is None else min(after, head)
            sub_id = "wh_" + secrets.token_hex(8)
            secret = new_secret()
            created = self.clock.now().isoformat()
            # A person's token lives at most the ttl: so, at the latest, does what it made.
            expires = None if principal.via == "api-key" else (
                self.clock.now().timestamp() + self.settings.token_ttl_seconds)
            cur.execute(
                "INSERT INTO kaoping_webhook_subscriptions (id, owner, role, url, event_types, "
                "secret, idempotency_key, fingerprint, after_position, active, created_at, "
                "via, credential_expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (sub_id, principal.id, principal.role.value, url,
                 msgspec.json.encode(sorted(event_types)).decode(), secret, key, fingerprint,
                 start, True, created, principal.via, expires))
        self._wake.set()
        return Subscription(id=sub_id, url=url, event_types=sorted(event_types),
                            after_position=start, active=True, paused=False,
                            created_at=created, deleted_at=None, version=1), secret, False

    def subscriptions(self, owner: str, after: str | None, limit: int) -> list[Subscription]:
        with self.db.read() as cur:
            cur.execute(f"SELECT {_SUB_COLUMNS} FROM kaoping_webhook_subscriptions "  # noqa: S608
                        "WHERE owner = %s AND id > %s ORDER BY id LIMIT %s",
                        (owner, after or "", limit))
            return [_subscription(r) for r in cur.fetchall()]

    def _own(self, cur: Cursor, owner: str, sub_id: str) -> Subscription:
        """The owner's subscription; another principal's is as absent as a missing one (404,
        never 403: its existence is not revealed)."""
        cur.execute(f"SELECT {_SUB_COLUMNS} FROM kaoping_webhook_subscriptions "  # noqa: S608
                    "WHERE id = %s AND owner = %s", (sub_id, owner))
        row = cur.fetchone()
        if row is None:
            msg = f"you have no webhook subscription {sub_id}"
            raise NotFound(msg, rule="webhook.subscription.exists")
        return _subscription(row)

    def subscription(self, owner: str, sub_id: str) -> Subscription:
        with self.db.read() as cur:
            return self._own(cur, owner, sub_id)

    def set_paused(self, owner: str, sub_id: str, *, paused: bool, expected_version: int,
                   key: str | None, fingerprint: str) -> tuple[Subscription, bool]:
        """Pause (events keep being queued, nothing is sent) or resume (the queued deliveries
        go out in log order). Return the subscription and whether this was a replay of the
        last change's Idempotency-Key."""
        with self.db.write() as cur:
            sub = self._own(cur, owner, sub_id)
            if _replays_last_change(cur, sub_id, key, fingerprint):
                return sub, True
            if not sub.active:
                msg = f"webhook subscription {sub_id} was deleted; subscribe again"
                raise Conflict(msg, rule="webhook.subscription.deleted")
            if sub.suspended_at is not None and not paused:
                raise _suspended(sub)
            self._advance(cur, sub, expected_version, "paused = %s, change_key = %s, "
                          "change_fingerprint = %s", (paused, key, fingerprint))
            sub = self._own(cur, owner, sub_id)
        self._wake.set()
        return sub, False

    def delete(self, owner: str, sub_id: str, *, expected_version: int,
               key: str | None = None, fingerprint: str = "") -> tuple[Subscription, bool]:
        """Deactivate: nothing more is queued or sent, pending deliveries are cancelled; the
        subscription and its delivery log stay readable (audit). Return it and whether this
        was a replay of the last change's Idempotency-Key."""
        with self.db.write() as cur:
            sub = self._own(cur, owner, sub_id)
            if _replays_last_change(cur, sub_id, key, fingerprint):
                return sub, True
            if not sub.active and sub.version == expected_version:
                return sub, False  # deleted already, and the caller saw it deleted
            self._advance(cur, sub, expected_version, "active = %s, deleted_at = %s, "
                          "change_key = %s, change_fingerprint = %s",
                          (False, self.clock.now().isoformat(), key, fingerprint))
            cur.execute("UPDATE kaoping_webhook_deliveries SET state = 'cancelled' "
                        "WHERE subscription_id = %s AND state = 'pending'", (sub_id,))
            return self._own(cur, owner, sub_id), False

    @staticmethod
    def _advance(cur: Cursor, sub: Subscription, expected: int, assignments: str,
                 params: tuple[Any, ...]) -> None:
        """Apply a change if the subscription is still at ``expected`` (If-Match)."""
        cur.execute(f"UPDATE kaoping_webhook_subscriptions SET {assignments}, "  # noqa: S608
                    "version = version + 1 WHERE id = %s AND version = %s RETURNING 1",
                    (*params, sub.id, expected))
        if not cur.fetchall():  # stale, or changed since it was read: report the version now
            cur.execute("SELECT version FROM kaoping_webhook_subscriptions WHERE id = %s",
                        (sub.id,))
            row = cur.fetchone()
            current = int(row[0]) if row else sub.version
            msg = f"webhook subscription {sub.id} is at version {current}, not {expected}"
            raise StaleVersion(msg, current=current)

    def deliveries(self, owner: str, sub_id: str, after: int, limit: int) -> list[Delivery]:
        with self.db.read() as cur:
            self._own(cur, owner, sub_id)
            cur.execute(f"SELECT {_DELIVERY_COLUMNS} FROM kaoping_webhook_deliveries "  # noqa: S608
                        "WHERE subscription_id = %s AND id > %s ORDER BY id LIMIT %s",
                        (sub_id, after, limit))
            return [_delivery(r) for r in cur.fetchall()]

    def redeliver(self, owner: str, sub_id: str, delivery_id: int,
                  key: str | None) -> tuple[Delivery, bool]:
        """Queue a delivery again now (whatever its state). The same Idempotency-Key twice
        queues it once (the second answer is a replay); used for another delivery, refused."""
        now = self.clock.now().timestamp()
        if not 0 < delivery_id < 2**63:  # beyond any stored id (and any SQLite INTEGER)
            msg = f"subscription {sub_id} has no delivery {delivery_id}"
            raise NotFound(msg, rule="webhook.delivery.exists")
        with self.db.write() as cur:
            sub = self._own(cur, owner, sub_id)
            if not sub.active:
                msg = f"webhook subscription {sub_id} was deleted; its log is read-only"
                raise Conflict(msg, rule="webhook.subscription.deleted")
            if sub.suspended_at is not None:
                raise _suspended(sub)
            cur.execute("SELECT redeliver_key FROM kaoping_webhook_deliveries "
                        "WHERE id = %s AND subscription_id = %s", (delivery_id, sub_id))
            row = cur.fetchone()
            if row is None:
                msg = f"subscription {sub_id} has no delivery {delivery_id}"
                raise NotFound(msg, rule="webhook.delivery.exists")
            if key is not None and row[0] != key:
                cur.execute("SELECT 1 FROM kaoping_webhook_deliveries WHERE subscription_id "
                            "= %s AND redeliver_key = %s AND id <> %s",
                            (sub_id, key, delivery_id))
                if cur.fetchone() is not None:
                    raise _key_reused()
            replayed = key is not None and row[0] == key
            if not replayed:
                cur.execute("UPDATE kaoping_webhook_deliveries SET state = 'pending', "
                            "attempts = 0, first_attempt_at = NULL, next_attempt_at = %s, "
                            "redeliver_key = %s WHERE id = %s", (now, key, delivery_id))
            cur.execute(f"SELECT {_DELIVERY_COLUMNS} FROM kaoping_webhook_deliveries "  # noqa: S608
                        "WHERE id = %s", (delivery_id,))
            found = cur.fetchone()
        self._wake.set()
        assert found is not None  # noqa: S101 -- read back in the same transaction
        return _delivery(found), replayed

    # -- operators (kaoping webhooks list / remove) --

    def everyone(self) -> list[tuple[str, str, Subscription]]:
        """Every subscription with its owner and role, for operators."""
        with self.db.read() as cur:
            cur.execute(f"SELECT owner, role, {_SUB_COLUMNS} FROM "  # noqa: S608
                        "kaoping_webhook_subscriptions ORDER BY created_at, id")
            return [(str(r[0]), str(r[1]), _subscription(r[2:])) for r in cur.fetchall()]

    def remove(self, sub_id: str, reason: str, actor: str) -> Subscription:
        """An operator deactivates a subscription (whoever owns it), with the reason recorded;
        pending deliveries are cancelled, the row and its log stay for audit."""
        with self.db.write() as cur:
            cur.execute("SELECT owner FROM kaoping_webhook_subscriptions WHERE id = %s",
                        (sub_id,))
            row = cur.fetchone()
            if row is None:
                msg = f"no webhook subscription {sub_id}"
                raise NotFound(msg, rule="webhook.subscription.exists")
            cur.execute("UPDATE kaoping_webhook_subscriptions SET active = %s, deleted_at = %s, "
                        "deleted_reason = %s, version = version + 1 WHERE id = %s AND "
                        "active = %s RETURNING 1",
                        (False, self.clock.now().isoformat(), f"{actor}: {reason}", sub_id,
                         True))
            if not cur.fetchall():
                msg = f"webhook subscription {sub_id} was deleted already"
                raise Conflict(msg, rule="webhook.subscription.deleted")
            cur.execute("UPDATE kaoping_webhook_deliveries SET state = 'cancelled' "
                        "WHERE subscription_id = %s AND state = 'pending'", (sub_id,))
            log.warning("webhook.removed", subscription=sub_id, actor=actor, reason=reason)
            return self._own(cur, str(row[0]), sub_id)

    # -- the deliverer --

    def suspend_orphans(self) -> list[str]:
        """Suspend every live subscription whose credential is gone: an API-key principal with
        no unrevoked key left, or a person's token past its expiry. Return their ids."""
        now = self.clock.now()
        with self.db.write() as cur:
            cur.execute(
                "SELECT s.id, s.owner, s.via, s.credential_expires_at FROM "
                "kaoping_webhook_subscriptions s WHERE s.active = %s AND s.suspended_at IS NULL "
                "AND ((s.via = 'api-key' AND NOT EXISTS (SELECT 1 FROM kaoping_api_keys k "
                "WHERE 'key:' || COALESCE(k.principal_key_id, k.key_id) = s.owner "
                "AND k.revoked_at IS NULL)) "
                "OR (s.via = 'token' AND s.credential_expires_at <= %s))",
                (True, now.timestamp()))
            gone = cur.fetchall()
            for sub_id, owner, via, _ in gone:
                reason = (f"the API key of {owner} was revoked" if via == "api-key" else
                          f"the token {owner} subscribed with expired")
                cur.execute("UPDATE kaoping_webhook_subscriptions SET suspended_at = %s, "
                            "suspended_reason = %s, version = version + 1 WHERE id = %s",
                            (now.isoformat(), reason, sub_id))
                log.warning("webhook.suspended", subscription=sub_id, owner=owner,
                            reason=reason)
        return [str(g[0]) for g in gone]

    def queue(self, batch: int = 500) -> int:
        """Queue deliveries of new events for every active subscription, paused ones included
        (their deliveries wait for the resume); return how many. Suspended ones get none."""
        self.suspend_orphans()
        with self.db.read() as cur:
            cur.execute("SELECT id, role, event_types FROM kaoping_webhook_subscriptions "
                        "WHERE active = %s AND suspended_at IS NULL", (True,))
            subs = cur.fetchall()
        queued = 0
        now = self.clock.now().timestamp()
        for sub_id, role, types in subs:
            wanted = set(msgspec.json.decode(types))
            with self.db.write() as cur:
                # Re-read under the row's lock (SQLite: the write lock), so a subscription
                # deleted since the list above gets no new pending deliveries.
                cur.execute("SELECT after_position FROM kaoping_webhook_subscriptions "  # noqa: S608 -- a fixed clause
                            "WHERE id = %s AND active = %s AND suspended_at IS NULL"
                            + (" FOR UPDATE" if cur.engine == "postgres" else ""),
                            (sub_id, True))
                row = cur.fetchone()
                if row is None:
                    continue
                events, last = page(cur, self.mapper, Role(role), self.settings.ledger_origin,
                                    row[0], batch)
                rows = [(sub_id, e.position, e.type, now) for e in events
                        if not wanted or e.type in wanted]
                if rows:
                    cur.executemany(
                        "INSERT INTO kaoping_webhook_deliveries (subscription_id, position, "
                        "event_type, state, attempts, next_attempt_at) VALUES "
                        "(%s, %s, %s, 'pending', 0, %s) "
                        "ON CONFLICT (subscription_id, position) DO NOTHING", rows)
                if last != row[0]:
                    cur.execute("UPDATE kaoping_webhook_subscriptions SET after_position = %s "
                                "WHERE id = %s", (last, sub_id))
            queued += len(rows)
        return queued

    def _claim(self, limit: int) -> list[tuple[int, str, int, int, float | None, str, str, str]]:
        self.suspend_orphans()  # a key revoked since the last queue sends nothing more
        now = self.clock.now().timestamp()
        lease = now + self.settings.webhook_timeout_seconds * 2 + 5
        with self.db.read() as cur:
            cur.execute(
                "SELECT d.id, d.subscription_id, d.position, d.attempts, d.first_attempt_at, "
                "s.url, s.secret, s.role, d.next_attempt_at FROM kaoping_webhook_deliveries d "
                "JOIN kaoping_webhook_subscriptions s ON s.id = d.subscription_id "
                "WHERE d.state = 'pending' AND d.next_attempt_at <= %s "
                "AND s.active = %s AND s.paused = %s AND s.suspended_at IS NULL "
                # Queued in log order, so a resumed subscription's backlog goes out in order.
                "ORDER BY d.next_attempt_at, d.id LIMIT %s", (now, True, False, limit))
            due = cur.fetchall()
        claimed = []
        with self.db.write() as cur:  # one transaction for the batch's leases
            for row in due:
                cur.execute("UPDATE kaoping_webhook_deliveries SET next_attempt_at = %s "
                            "WHERE id = %s AND state = 'pending' AND next_attempt_at = %s "
                            "RETURNING 1", (lease, row[0], row[8]))
                if cur.fetchall():
                    claimed.append(tuple(row[:8]))
        return claimed

    def deliver_due(self, limit: int = 100) -> int:
        """Attempt every due delivery once; return how many succeeded."""
        ok = 0
        with httpx.Client(timeout=self.settings.webhook_timeout_seconds,
                          follow_redirects=False) as client:
            for d_id, sub_id, position, attempts, first, url, secret, role in self._claim(limit):
                status, error = self._attempt(client, sub_id, position, url, secret, role)
                ok += self._record(d_id, attempts, first, status, error)
        return ok

    def _body(self, role: str, position: int) -> bytes | None:
        with self.db.read() as cur:
            events, _ = page(cur, self.mapper, Role(role), self.settings.ledger_origin,
                             position - 1, 1, batch=1)
        if not events or events[0].position != position:
            return None
        return msgspec.json.encode(events[0])

    def _attempt(self, client: httpx.Client, sub_id: str, position: int, url: str, secret: str,
                 role: str) -> tuple[int | None, str | None]:
        try:
            check_url(url, self.policy, self.resolver)
        except InvalidInput as exc:
            return None, str(exc)
        body = self._body(role, position)
        if body is None:  # the role no longer sees this type: nothing to send
            return None, "the event is no longer visible to the subscriber's role"
        msg_id, timestamp = f"{sub_id}.{position}", int(self.clock.now().timestamp())
        headers = {"content-type": "application/json", "webhook-id": msg_id,
                   "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(secret, msg_id, timestamp, body),
                   "user-agent": "kaoping-webhooks/1"}
        try:
            with client.stream("POST", url, content=body, headers=headers) as resp:
                read = 0
                for chunk in resp.iter_bytes():
                    read += len(chunk)
                    if read > self.settings.webhook_max_response_bytes:
                        break  # the status is what counts; the rest is not read
                status = resp.status_code
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= status < 300:
            return status, None
        return status, f"HTTP {status}"

    def _record(self, d_id: int, attempts: int, first: float | None, status: int | None,
                error: str | None) -> int:
        now = self.clock.now().timestamp()
        first = first if first is not None else now
        with self.db.write() as cur:
            if error is None:
                cur.execute("UPDATE kaoping_webhook_deliveries SET state = 'delivered', "
                            "attempts = %s, first_attempt_at = %s, last_status = %s, "
                            "last_error = NULL, delivered_at = %s WHERE id = %s",
                            (attempts + 1, first, status, self.clock.now().isoformat(), d_id))
                return 1
            delay = self.backoff(attempts + 1)
            expired = now + delay - first > self.settings.webhook_retry_for_seconds
            # Not over a cancellation made while the attempt was in flight.
            cur.execute("UPDATE kaoping_webhook_deliveries SET state = %s, attempts = %s, "
                        "first_attempt_at = %s, next_attempt_at = %s, last_status = %s, "
                        "last_error = %s WHERE id = %s AND state = 'pending'",
                        ("failed" if expired else "pending", attempts + 1, first, now + delay,
                         status, error, d_id))
        log.warning("webhook.attempt_failed", delivery=d_id, status=status, error=error,
                    parked=expired)
        return 0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter (AWS Architecture Blog, 2015): a uniform draw
        in [0, min(cap, base * 2^(attempt-1))], never under a tenth of the base."""
        base = self.settings.webhook_retry_base_seconds
        ceiling = min(self.settings.webhook_retry_cap_seconds, base * 2 ** (attempt - 1))
        return max(base / 10, self.rng.uniform(0, ceiling))

    def poke(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """The deliverer loop (see module doc)."""
        while not stop.is_set():
            try:
                busy = self.queue() + self.deliver_due()
            except Exception:
                log.exception("webhook.loop_failed")
                busy = 0
            if not busy:
                self._wake.wait(self.settings.webhook_poll_seconds)
                self._wake.clear()

