"""The audit console's sign-outs: a signed-out session id is refused until its cookie expires.

The session itself lives in its sealed cookie (api/console/session.py); only the end of one is
stored, append-only (migrations 0026), so that signing out also ends any copy of the cookie.
"""

from __future__ import annotations

from datetime import datetime

from service.db import Database, db_time


def record_sign_out(db: Database, session_id: str, expires: int, now: datetime) -> None:
    with db.write() as cur:
        cur.execute("INSERT INTO kaoping_console_signouts (session_id, expires, signed_out_at) "
                    "VALUES (%s, %s, %s) ON CONFLICT (session_id) DO NOTHING",
                    (session_id, expires, db_time(cur.engine, now)))


def signed_out(db: Database, session_id: str) -> bool:
    with db.read() as cur:
        cur.execute("SELECT 1 FROM kaoping_console_signouts WHERE session_id = %s",
                    (session_id,))
        return cur.fetchone() is not None
