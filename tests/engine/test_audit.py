"""The hash-chained audit trail: every way of changing it after the fact that the chain can
show is caught, and what it cannot show without a noted head is caught with one."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from engine import audit
from engine.audit import AuditTrail, Head, verify


def filled(tmp_path: Path, n: int = 6) -> AuditTrail:
    trail = AuditTrail(tmp_path / "audit.jsonl")
    for i in range(n):
        trail.append("answer", chat=1, model="m", n=i)
    return trail


def lines(trail: AuditTrail) -> list[str]:
    return trail.path.read_text(encoding="utf-8").splitlines()


def write(trail: AuditTrail, rows: list[str]) -> None:
    trail.path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_an_untouched_trail_verifies_and_its_head_is_its_last_record(tmp_path: Path) -> None:
    trail = filled(tmp_path)
    report = verify(trail.path, head=trail.head())
    assert report.ok, report.problems
    assert (report.records, report.first_seq, report.head) == (6, 1, trail.head())
    assert [r["seq"] for r in trail.records()] == [1, 2, 3, 4, 5, 6]
    assert trail.records()[0]["prev"] == audit.GENESIS


def test_an_edited_record_is_caught_where_the_next_one_no_longer_links(tmp_path: Path) -> None:
    trail = filled(tmp_path)
    rows = lines(trail)
    rows[2] = rows[2].replace('"model":"m"', '"model":"x"')
    write(trail, rows)
    report = verify(trail.path)
    assert not report.ok
    assert report.problems == [
        "seq 4 (line 4) does not link to the line before it: that line was changed, or lines "
        "were removed or reordered here"
    ]


@pytest.mark.parametrize("change", ["remove", "swap", "insert"])
def test_a_removed_reordered_or_inserted_record_is_caught(tmp_path: Path, change: str) -> None:
    trail = filled(tmp_path)
    rows = lines(trail)
    if change == "remove":
        del rows[3]
    elif change == "swap":
        rows[2], rows[3] = rows[3], rows[2]
    else:
        rows.insert(2, json.dumps({"kind": "answer", "chat": 9}))
    write(trail, rows)
    assert not verify(trail.path).ok


def test_the_newest_record_changed_or_cut_is_caught_only_against_a_noted_head(
    tmp_path: Path,
) -> None:
    """What a chain cannot show alone (docs/compliance.md says so): nothing follows the last
    record to disagree with it. A head noted elsewhere shows it."""
    trail = filled(tmp_path)
    noted = trail.head()
    assert noted is not None
    rows = lines(trail)
    write(trail, [*rows[:-1], rows[-1].replace('"n":5', '"n":7')])
    assert verify(trail.path).ok  # the limit, stated
    assert verify(trail.path, head=noted).problems == [
        "seq 6 is not the record that was noted: the trail was rewritten"
    ]
    write(trail, rows[:-2])
    assert verify(trail.path).ok
    assert "no longer in the trail" in verify(trail.path, head=noted).problems[0]
    assert Head.parse(str(noted)) == noted


def test_retention_removes_old_records_with_a_chained_record_of_what_went(
    tmp_path: Path,
) -> None:
    trail = filled(tmp_path, 4)
    time.sleep(0.02)
    cutoff = time.time()
    time.sleep(0.02)
    trail.append("answer", chat=2, model="m")
    assert audit.apply_retention(trail, 0) == 0  # 0 keeps everything
    assert trail.remove_before(cutoff, "older than 30 days") == 4
    records = trail.records()
    assert [r["seq"] for r in records] == [5, 6]
    assert records[-1]["kind"] == "retention"
    assert (records[-1]["removed"], records[-1]["removed_through_seq"]) == (4, 4)
    report = verify(trail.path)
    assert report.ok and report.retained_from == 5, report.problems
    # Removing more by hand is not retention: the chain says so.
    write(trail, lines(trail)[1:])
    assert "no retention record" in verify(trail.path).problems[0]


def test_a_line_cut_short_by_a_kill_is_reported_and_the_next_append_goes_on(
    tmp_path: Path,
) -> None:
    trail = filled(tmp_path, 3)
    with trail.path.open("ab") as fh:
        fh.write(b'{"kind":"answer","chat":1,"se')  # killed mid-write
    record = trail.append("answer", chat=1, model="m")
    assert record["seq"] == 4
    report = verify(trail.path)
    assert report.problems == ["line 4 is not a whole record (cut short or damaged)"]
    assert report.records == 4


def test_lines_from_before_the_chain_are_counted_and_linked_from_the_first_record(
    tmp_path: Path,
) -> None:
    path = tmp_path / "api-audit.jsonl"
    path.write_text('{"time": 1.0, "path": "/v1/models", "status": 200}\n', encoding="utf-8")
    trail = AuditTrail(path)
    trail.append("api", path="/v1/models", status=200)
    report = verify(path)
    assert report.ok and (report.unchained, report.records) == (1, 1)
    path.write_text(path.read_text().replace("200}", "500}", 1), encoding="utf-8")
    assert not verify(path).ok  # the old line is covered by the first chained one


def test_a_trail_past_its_size_drops_its_oldest_half_and_says_so(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "a.jsonl", max_bytes=4000)
    for i in range(60):
        trail.append("api", path="/v1/chat/completions", status=200, n=i)
    assert trail.path.stat().st_size < 8000
    assert any(r["kind"] == "retention" and r["reason"] == "size" for r in trail.records())
    report = verify(trail.path)
    assert report.ok and report.retained_from is not None, report.problems


def _append_many(path: str, who: int) -> None:
    trail = AuditTrail(Path(path))
    for i in range(100):
        trail.append("api", who=who, n=i)


def test_two_processes_appending_at_once_keep_one_unbroken_chain(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), w)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    report = verify(path)
    assert report.ok and report.records == 200, report.problems
