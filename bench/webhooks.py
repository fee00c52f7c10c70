"""Webhook delivery rate on PostgreSQL, beside the physical limit measured in the same run:
the same number of same-size POSTs sent one after another with httpx to the same receiver
(a ThreadingHTTPServer on 127.0.0.1 answering 204). Reported: queueing (events/s, which reads
the feed as the subscriber's role and writes one delivery row each) and delivering (claim, sign,
send, record per delivery), one deliverer.
"""

from __future__ import annotations

import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.common import rate, scratch_postgres, table, timed
from domain.units import UnitKind, register_unit
from service.principals import Principal, Role
from service.runtime import Services
from service.webhooks import Webhooks


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        type(self).received += 1
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def run(events: int = 2000) -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        with tempfile.TemporaryDirectory() as tmp, scratch_postgres(Path(tmp)) as settings:
            services = Services(settings.with_overrides(webhook_allow_loopback=True))
            try:
                units = [register_unit(f"W{i}", "单位", UnitKind.DEPARTMENT, "vertical", "bench")
                         for i in range(events)]
                for i in range(0, events, 100):
                    services.store.save(*units[i:i + 100])
                hooks: Webhooks = services.webhooks
                who = Principal(id="bench", name="bench", role=Role.ORGANIZER, via="api-key")
                hooks.subscribe(who, url, [], -1, None, "")
                queued = [0]

                def queue() -> None:
                    while (n := hooks.queue()) > 0:
                        queued[0] += n

                t_queue = timed(queue)
                delivered = [0]

                def deliver() -> None:
                    while (n := hooks.deliver_due(limit=500)) > 0:
                        delivered[0] += n

                t_deliver = timed(deliver)
                body = hooks._body("organizer", 0) or b"{}"
                with httpx.Client() as client:
                    t_raw = timed(lambda: [client.post(url, content=body, headers={
                        "content-type": "application/json"}) for _ in range(events)])
            finally:
                services.close()
    finally:
        server.shutdown()
        server.server_close()
    raw = rate(events, t_raw)
    rows = [
        ("raw httpx POSTs, sequential (limit)", f"{raw:,.0f}/s", "1.00"),
        ("queue (feed read + delivery rows)", f"{rate(queued[0], t_queue):,.0f}/s", "—"),
        ("deliver (claim, sign, POST, record)", f"{rate(delivered[0], t_deliver):,.0f}/s",
         f"{rate(delivered[0], t_deliver) / raw:.2f}"),
    ]
    return table(f"Webhooks: {events:,} events, one subscription, PostgreSQL", rows,
                 ("what", "rate", "ratio"))
