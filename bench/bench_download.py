"""Download throughput: Hearth's downloader against curl, on the same loopback Hub, in one run.

    .venv/bin/python bench/bench_download.py [--repeats 3] [--size-mb 512]

The file is the bundled GGUF repeated to --size-mb (so the run is long enough to measure) and
served by tests/hf_server.py (hub + CDN origins, as the Hub does). Per repeat:
  curl         `curl -L` of the resolve URL to a file (raw HTTP, no checks)
  hearth       engine.models.download: HEAD via huggingface_hub, GET, sha256 while writing,
               GGUF check skipped (not a GGUF name), fsync, rename
  hearth+verify-only  the sha256 of the finished file alone, to show what hashing costs
Prints a table and writes bench/results/download-<time>.json. Read the ratio: the machine is
shared and noisy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.models import bundled, downloads  # noqa: E402
from engine.paths import DataPaths  # noqa: E402
from tests.hf_server import HFServer, HostedFile  # noqa: E402


def make_payload(folder: Path, size_mb: int) -> Path:
    src = bundled.CHAT.path().read_bytes()
    out = folder / "payload.bin"
    with out.open("wb") as fh:
        written = 0
        while written < size_mb * 2**20:
            fh.write(src)
            written += len(src)
    return out


def time_curl(url: str, dest: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sSfL", "-o", str(dest), url], check=True)
    return time.perf_counter() - started


def time_hearth(endpoint: str, home: Path) -> float:
    paths = DataPaths(
        config=home / "config", data=home / "data", cache=home / "cache", logs=home / "logs"
    ).ensure()
    request = downloads.DownloadRequest("bench/payload", "payload.bin", "main")
    config = downloads.DownloadConfig(endpoint=endpoint)
    started = time.perf_counter()
    for event in downloads.download(request, paths, config):
        last = event
    elapsed = time.perf_counter() - started
    assert isinstance(last, downloads.DownloadDone)
    return elapsed


def time_sha256(path: Path) -> float:
    started = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return time.perf_counter() - started


def serve(payload: Path) -> int:
    with HFServer([HostedFile("bench/payload", "payload.bin", payload)], lifetime_s=3600) as hub:
        print(hub.endpoint, flush=True)
        time.sleep(3600)
    return 0


def main() -> int:
    if sys.argv[1:2] == ["--serve"]:
        return serve(Path(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmp_name:
        tmp = Path(tmp_name)
        payload = make_payload(tmp, args.size_mb)
        size = payload.stat().st_size
        rows: dict[str, list[float]] = {"curl": [], "hearth": [], "sha256 only": []}
        # The server runs in its own process, so neither client shares a GIL with it.
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(payload)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            endpoint = server.stdout.readline().strip()
            url = f"{endpoint}/bench/payload/resolve/main/payload.bin"
            for i in range(args.repeats):
                dest = tmp / f"curl-{i}.bin"
                rows["curl"].append(time_curl(url, dest))
                rows["sha256 only"].append(time_sha256(dest))
                dest.unlink()
                home = tmp / f"home-{i}"
                rows["hearth"].append(time_hearth(endpoint, home))
                for f in (home / "data" / "models").glob("payload*.bin"):
                    f.unlink()
        finally:
            server.terminate()
            server.wait(10)
    medians = {k: statistics.median(v) for k, v in rows.items()}
    mbps = {k: size / v / 1e6 for k, v in medians.items()}
    print(f"file {size / 1e6:.0f} MB over loopback, median of {args.repeats}")
    print(f"{'method':14} {'seconds':>8} {'MB/s':>8} {'vs curl':>8}")
    for k in rows:
        print(f"{k:14} {medians[k]:8.2f} {mbps[k]:8.0f} {mbps[k] / mbps['curl']:8.2f}x")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"download-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "size_bytes": size,
                "repeats": args.repeats,
                "seconds": rows,
                "median_mb_per_s": mbps,
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
