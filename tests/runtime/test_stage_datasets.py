"""What spec.datasets asks of `berth stage`, against a real SeaweedFS: shards, metrics, the report, a server crash."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from berth.runtime.stage import STATE_DIR, StageStats, _exposition, _figures, stage

from ..conftest import berth_process
from .conftest import Seaweed
from .test_stage import _fill, _tree, stage_until_journalled


def _metrics(text: str) -> dict[str, float]:
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_metrics_file_is_what_prometheus_client_writes() -> None:
    """The text format is written by hand (no prometheus_client import per run): prometheus_client's
    own exposition of the same gauges, and its parser, agree with it, for a label that needs escaping."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    source = 's3://b/we"ird\\pre\nfix'
    figures = _figures(StageStats(files=3, bytes_total=12_000_000, fetched=2, bytes_done=8_000_000, seconds=0.25))
    registry = CollectorRegistry()
    for name, doc, value in figures:
        Gauge(name, doc, ["source"], registry=registry).labels(source).set(value)
    ours = {
        (s.name, s.labels["source"], s.value)
        for f in text_string_to_metric_families(_exposition(source, figures))
        for s in f.samples
    }
    theirs = {
        (s.name, s.labels["source"], s.value)
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }
    assert ours == theirs and len(ours) == len(figures)
    assert ("berth_stage_bytes_fetched", source, 8_000_000) in ours


def test_shards_split_the_listing_into_disjoint_parts_and_report_metrics(
    seaweed: Seaweed, s3: str, tmp_path: Path
) -> None:
    bucket = s3.split("/")[2]
    files = {f"part-{i:02d}.bin": os.urandom(3000 + i) for i in range(10)}
    _fill(seaweed.client(), bucket, "corpus", files)
    got: dict[str, bytes] = {}
    for rank in range(3):
        dest = tmp_path / f"rank-{rank}"
        report = tmp_path / f"report-{rank}.json"
        out = berth_process(
            "stage", f"s3://{bucket}/corpus", str(dest), "--shard", f"{rank}/3", "--report", str(report), "-o", "json"
        )
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert json.loads(report.read_text()) == result
        tree = _tree(dest)
        # Round robin over the sorted listing: rank r holds files r, r+3, ...
        assert sorted(tree) == sorted(files)[rank::3]
        assert not set(tree) & set(got)
        got.update(tree)
        assert (result["files"], result["fetched"], result["bytesFetched"]) == (
            len(tree),
            len(tree),
            sum(map(len, tree.values())),
        )
        metrics = _metrics((dest / STATE_DIR / "metrics.prom").read_text())
        assert metrics["berth_stage_files"] == len(tree)
        assert metrics["berth_stage_bytes_fetched"] == result["bytesFetched"]
        assert metrics["berth_stage_duration_seconds"] > 0
        assert metrics["berth_stage_throughput_bytes_per_second"] > 0
    assert got == files

    # Text output names files, MiB, seconds and MiB/s; a second run skips everything.
    again = berth_process("stage", f"s3://{bucket}/corpus", str(tmp_path / "rank-0"), "--shard", "0/3")
    assert again.returncode == 0 and "0 fetched" in again.stdout and "MiB/s" in again.stdout, again.stdout
    more = berth_process("stage", f"s3://{bucket}/corpus", str(tmp_path / "x"), "--shard", "3/3")
    assert more.returncode == 2 and "RANK/WORLD" in more.stderr and "Traceback" not in more.stderr
    # More ranks than files: the extra rank stages nothing, and that is not an error.
    empty = stage(f"s3://{bucket}/corpus", tmp_path / "rank-11", shard=(11, 12))
    assert (empty.files, empty.fetched) == (0, 0)


def test_metrics_reach_a_pushgateway(seaweed: Seaweed, s3: str, tmp_path: Path) -> None:
    """A stand-in for Prometheus' Pushgateway (no Go binary of it here): an HTTP server that records the request.

    What is checked is prometheus_client's own push (method, path with job and grouping key, the
    text body), which is what a real Pushgateway receives.
    """
    bucket = s3.split("/")[2]
    _fill(seaweed.client(), bucket, "pushed", {"a.bin": b"x" * 5000})
    received: list[tuple[str, str, bytes]] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            received.append((self.command, self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        out = berth_process("stage", f"s3://{bucket}/pushed", str(tmp_path / "v"), env={"BERTH_PUSHGATEWAY": url})
        assert out.returncode == 0, out.stderr
    finally:
        server.shutdown()
        server.server_close()
    [(method, path, body)] = received
    assert method == "PUT" and path.startswith("/metrics/job/berth-stage/source@base64/")
    assert _metrics(body.decode())["berth_stage_bytes_fetched"] == 5000
    down = berth_process("stage", f"s3://{bucket}/pushed", str(tmp_path / "v"), "--pushgateway", url)
    assert down.returncode == 1 and "could not be pushed" in down.stderr and "Traceback" not in down.stderr
    assert _tree(tmp_path / "v") == {"a.bin": b"x" * 5000}


@pytest.mark.slow  # SeaweedFS takes 10-20 s to serve writes again after a SIGKILL
def test_server_killed_mid_stage_then_resumed_loses_and_duplicates_nothing(
    seaweed: Seaweed, s3: str, tmp_path: Path
) -> None:
    files, source, dest, proc = stage_until_journalled(seaweed, s3, tmp_path, 400, 10)
    journal = dest / STATE_DIR / "journal"
    seaweed.kill()  # SIGKILL: the store goes away mid-file
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        raise
    seaweed.start()
    assert proc.returncode == 1, err
    assert "download failed" in err and "run again to resume" in err and "Traceback" not in err
    lines = journal.read_text().splitlines()
    done = [json.loads(line)["path"] for line in lines]
    assert len(done) == len(set(done)) and 10 <= len(done) < 400
    assert all(_tree(dest)[p] == files[p] for p in done)  # every journalled file is complete and right

    stats = stage(source, dest)
    assert (stats.skipped, stats.fetched) == (len(done), 400 - len(done))  # nothing fetched twice
    assert _tree(dest) == files  # nothing lost, nothing extra
    manifest = json.loads((dest / STATE_DIR / "manifest.json").read_text())
    assert sorted(manifest["files"]) == sorted(files)
    assert not journal.exists() and not any((dest / STATE_DIR / "partial").rglob("*.bin"))


def test_credentials_from_boto3s_chain_sign_the_same_urls(seaweed: Seaweed, s3: str, tmp_path: Path) -> None:
    """No keys in the environment (as with a pod's cloud identity): boto3's chain finds them, here in a
    shared credentials file, and berth signs the GETs with them; the env-keys path is the other tests'."""
    bucket = s3.split("/")[2]
    files = {"a b+c/ü.bin": os.urandom(70_000), "plain.bin": os.urandom(10)}  # keys that need escaping
    _fill(seaweed.client(), bucket, "chain", files)
    env = dict(seaweed.env)
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[default]\naws_access_key_id = {env.pop('AWS_ACCESS_KEY_ID')}\n"
        f"aws_secret_access_key = {env.pop('AWS_SECRET_ACCESS_KEY')}\n"
    )
    out = berth_process(
        "stage",
        f"s3://{bucket}/chain",
        str(tmp_path / "v"),
        "-o",
        "json",
        env={**env, "AWS_SHARED_CREDENTIALS_FILE": str(creds), "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
    )
    assert out.returncode == 0, out.stderr
    assert _tree(tmp_path / "v") == files
    env_keys = stage(f"s3://{bucket}/chain", tmp_path / "w")  # the s3 fixture's env keys: the signed listing
    assert env_keys.fetched == 2 and _tree(tmp_path / "w") == files
