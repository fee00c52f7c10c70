"""``verify-log`` checks the log in aligned blocks, in worker processes or in threads: both ways
give the same report, clean or tampered, on both stores.

The log is three whole blocks and part of a fourth, with streams whose previous leaf is in an
earlier block, and checkpoints inside a block, on a block's edge and at the end.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any

import pytest

from domain.units import UnitKind, register_unit
from service.ledger import merkle
from service.ledger.verify_log import BLOCK, BLOCK_LEVEL, Report, perfect_nodes, verify_log
from service.runtime import Services
from service.settings import Settings
from tests.integration.test_ledger import _q, _rid, _superuser

FIRST = 5000  # new units: a checkpoint inside the second block
RENAMED = 2 * BLOCK - FIRST  # renames of the first units: a checkpoint on the second's edge
LAST = BLOCK + 500  # more new units: the fourth block is a part-block
SIZE = FIRST + RENAMED + LAST
FORGED = b'{"name":"forged"}'


def _fill(services: Services) -> list[int]:
    """Save the log; return the sizes checkpoints were signed at."""
    units = [register_unit(f"B{i:05d}", "单位", UnitKind.DEPARTMENT, "vertical", "t")
             for i in range(FIRST)]
    for at in range(0, FIRST, 500):
        services.store.save(*units[at:at + 500])
    signed = [_sign(services)]
    for unit in units[:RENAMED]:
        unit.rename(f"{unit.name}·改", "a second version, its previous leaf blocks back", "t")
    for at in range(0, RENAMED, 500):
        services.store.save(*units[at:min(at + 500, RENAMED)])
    signed.append(_sign(services))
    more = [register_unit(f"C{i:05d}", "单位", UnitKind.DEPARTMENT, "vertical", "t")
            for i in range(LAST)]
    for at in range(0, LAST, 500):
        services.store.save(*more[at:at + 500])
    signed.append(_sign(services))
    assert signed == [FIRST, 2 * BLOCK, SIZE]
    return signed


def _sign(services: Services) -> int:
    return services.signer.sign(services.db, services.clock.now()).size


def _both(services: Services, **kwargs: Any) -> tuple[Report, Report]:
    """The report from two threads, and from two worker processes."""
    vkeys = [services.signer.vkey]
    threads = verify_log(services.db, vkeys, workers=1, **kwargs)
    processes = verify_log(services.db, vkeys, workers=2, processes_from=0, **kwargs)
    assert (threads.processes, processes.processes) == (0, 2)
    assert processes.failures == threads.failures
    assert (processes.events, processes.checkpoints, processes.nodes_checked, processes.root) \
        == (threads.events, threads.checkpoints, threads.nodes_checked, threads.root)
    return threads, processes


def _leaf_of(settings: Settings, conn: Any, position: int) -> int:
    row = conn.execute(_q(settings, "SELECT notification_id FROM kaoping_ledger WHERE "
                                    "position = %s"), (position,)).fetchone()
    return int(row[0])


def test_blocks_checked_in_processes_agree_with_threads_on_a_clean_log(
        services: Services) -> None:
    _fill(services)
    threads, _ = _both(services)
    assert threads.ok, threads.failures
    assert (threads.events, threads.checkpoints) == (SIZE, 3)
    assert threads.nodes_checked == perfect_nodes(SIZE)  # every stored node, inside and above
    with services.db.read() as cur:
        cur.execute("SELECT leaf_hash FROM kaoping_ledger ORDER BY position")
        assert threads.root == merkle.root_of([bytes(r[0]) for r in cur.fetchall()])


def test_processes_and_threads_report_the_same_tampering(
        services: Services, settings: Settings) -> None:
    _fill(services)
    changed, gone = 100, BLOCK + 7  # an event's payload in block 0; an event row in block 1
    first = 3  # a stored leaf in block 0: the rename at FIRST + 3 (block 1) chains to it
    with _superuser(settings) as conn:
        conn.execute(_q(settings, f"UPDATE kaoping_events SET state = %s WHERE {_rid(settings)} "
                                  "= %s"), (FORGED, _leaf_of(settings, conn, changed)))
        conn.execute(_q(settings, f"DELETE FROM kaoping_events WHERE {_rid(settings)} = %s"),
                     (_leaf_of(settings, conn, gone),))
        conn.execute(_q(settings, "UPDATE kaoping_ledger SET leaf_hash = %s WHERE position = %s"),
                     (bytes(32), first))
        for level, idx in ((3, 5), (BLOCK_LEVEL + 1, 0)):  # inside block 0; above the blocks
            conn.execute(_q(settings, "UPDATE kaoping_tree_nodes SET hash = %s WHERE level = %s "
                                      "AND idx = %s"), (bytes(32), level, idx))
        conn.execute(_q(settings, "DELETE FROM kaoping_ledger WHERE position >= %s AND "
                                  "position < %s"), (3 * BLOCK - 40, 3 * BLOCK))
    threads, _ = _both(services, stop_after=100)
    found = threads.failures
    rows = [f for f in found if f.startswith("position ")]
    assert [int(f.split()[1].rstrip(":")) for f in rows] == [first, changed, gone, FIRST + first]
    assert "does not match its leaf hash" in rows[1]
    assert rows[2] == f"position {gone}: its event row is missing (deleted)"
    assert "tree node level 3 index 5 (leaves 40..47)" in "\n".join(found)
    assert f"tree node level {BLOCK_LEVEL + 1} index 0" in "\n".join(found)
    assert [f.split(":")[0] for f in found if f.startswith("checkpoint")] == [
        f"checkpoint at size {size}" for size in (FIRST, 2 * BLOCK)]  # 12,788 is not reached
    # The gap runs to the block's end: where the rows resume is read from the next block.
    assert found[-1] == (f"positions {3 * BLOCK - 40}..{3 * BLOCK - 1} are missing from the "
                         "ledger (leaf rows deleted)")


def test_a_gap_inside_a_block_stops_both_at_the_same_place(
        services: Services, settings: Settings) -> None:
    _fill(services)
    with _superuser(settings) as conn:
        conn.execute(_q(settings, "DELETE FROM kaoping_ledger WHERE position = %s"), (BLOCK + 9,))
    threads, _ = _both(services)
    assert threads.failures == [f"positions {BLOCK + 9}..{BLOCK + 9} are missing from the "
                                "ledger (leaf rows deleted)"]
    assert threads.events == BLOCK + 9  # stopped there: nothing after the gap was folded


@pytest.mark.parametrize("stop_after", [1, 5])
def test_stop_after_counts_failures_across_blocks(
        services: Services, settings: Settings, stop_after: int) -> None:
    _fill(services)
    with _superuser(settings) as conn:
        for position in (10, BLOCK + 10, 2 * BLOCK + 10):  # one changed event in each block
            conn.execute(_q(settings, f"UPDATE kaoping_events SET state = %s WHERE "
                                      f"{_rid(settings)} = %s"),
                         (FORGED, _leaf_of(settings, conn, position)))
    threads, _ = _both(services, stop_after=stop_after)
    assert len(threads.failures) == stop_after
    assert threads.failures[0].startswith("position 10: ")


def test_a_killed_worker_process_leaves_the_rest_to_threads(services: Services) -> None:
    """Workers killed mid-run (out of memory, an operator's kill): the blocks they had in hand
    are checked again by threads, and the report says so; nothing hangs."""
    _fill(services)
    clean = verify_log(services.db, [services.signer.vkey], workers=1)
    killed: list[int] = []

    def kill_the_workers(done: int) -> None:
        if not killed:
            for child in multiprocessing.active_children():
                if child.pid is not None:
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)

    report = verify_log(services.db, [services.signer.vkey], workers=2, processes_from=0,
                        progress=kill_the_workers)
    assert len(killed) == 2
    assert report.ok, report.failures
    assert (report.events, report.checkpoints, report.nodes_checked, report.root) == (
        clean.events, clean.checkpoints, clean.nodes_checked, clean.root)
    assert report.processes == 2
    # A block's answer (128 KiB) outgrows a pipe's buffer: the workers were killed mid-answer.
    assert len(report.notes) == 1
    assert "ended (exit code -9) before answering" in report.notes[0]


def test_nodes_the_signer_stores_during_the_check_are_not_called_forged(
        services: Services) -> None:
    """Leaves appended since the last checkpoint; the signer signs them while verify-log runs,
    after their block was read. Their new nodes were not there to compare: they are neither
    counted nor reported as inserted by hand."""
    units = [register_unit(f"S{i:03d}", "单位", UnitKind.DEPARTMENT, "vertical", "t")
             for i in range(300)]
    services.store.save(*units[:100])
    assert _sign(services) == 100
    services.store.save(*units[100:])  # 200 leaves not signed yet
    signed: list[int] = []

    def sign_once(done: int) -> None:
        if not signed:
            signed.append(_sign(services))

    report = verify_log(services.db, [services.signer.vkey], progress=sign_once)
    assert signed == [300]
    assert report.ok, report.failures
    assert report.nodes_checked == perfect_nodes(100)  # the nodes stored when it began
    assert verify_log(services.db, [services.signer.vkey]).nodes_checked == perfect_nodes(300)
