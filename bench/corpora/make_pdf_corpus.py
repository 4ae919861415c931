#!/usr/bin/env python3
"""Build the "postgresql-pdf" evaluation corpus: real documentation printed to PDF.

What it makes
    One PDF per HTML page for a fixed list of 50 pages of the PostgreSQL 15 manual
    (Debian package ``postgresql-doc-15``, HTML under
    /usr/share/doc/postgresql-doc-15/html), chosen to read like an administrator's
    handbook: server configuration, client authentication, backup and restore, WAL,
    routine maintenance, monitoring, high availability / replication and a few SQL
    command reference pages.  Each page is printed with headless Chromium, so the
    PDFs are ordinary multi-page, text-bearing PDFs (the page an answer is on matters).

    The output folder also gets MANIFEST.json recording ``chromium --version``,
    ``dpkg-query -W postgresql-doc-15``, the exact command line used, and for each
    PDF its source HTML, sha256, byte size and page count.

How to run
    python3 bench/corpora/make_pdf_corpus.py [OUTPUT_DIR]

    OUTPUT_DIR defaults to /work/corpora/postgresql-pdf.  Needs /usr/bin/chromium
    and the postgresql-doc-15 package; uses the Python 3.11 standard library only.
    Every print runs under a timeout; any missing page, failed or timed-out print,
    or empty PDF is reported and makes the script exit non-zero (nothing is skipped
    silently).  At the end it prints a table of file, pages, bytes.

    The PDF bytes (and so the sha256 in MANIFEST.json) differ from run to run,
    because Chromium embeds creation timestamps; the extracted text and the page
    breaks are the same for the same Chromium and package versions.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HTML_DIR = Path("/usr/share/doc/postgresql-doc-15/html")
DEFAULT_OUT = Path("/work/corpora/postgresql-pdf")
CHROMIUM = "/usr/bin/chromium"
PACKAGE = "postgresql-doc-15"
PRINT_TIMEOUT_S = 180

# Fixed list of HTML pages (file stem == output PDF stem), grouped by topic.
PAGES = [
    # Server setup and configuration
    "server-start",
    "kernel-resources",
    "config-setting",
    "runtime-config-file-locations",
    "runtime-config-connection",
    "runtime-config-resource",
    "runtime-config-wal",
    "runtime-config-replication",
    "runtime-config-query",
    "runtime-config-logging",
    "runtime-config-statistics",
    "runtime-config-autovacuum",
    "runtime-config-client",
    "runtime-config-locks",
    "runtime-config-error-handling",
    "runtime-config-preset",
    "ssl-tcp",
    # Client authentication and roles
    "client-authentication",
    "auth-pg-hba-conf",
    "auth-username-maps",
    "auth-password",
    "auth-ldap",
    "auth-cert",
    "client-authentication-problems",
    "role-attributes",
    "predefined-roles",
    # Backup and restore, upgrades
    "backup-dump",
    "backup-file",
    "continuous-archiving",
    "app-pgbasebackup",
    "app-pgdump",
    "app-pgrestore",
    "upgrading",
    # Write-ahead log
    "wal-reliability",
    "wal-async-commit",
    "wal-configuration",
    # Routine maintenance
    "routine-vacuuming",
    "logfile-maintenance",
    # Monitoring
    "monitoring-ps",
    "progress-reporting",
    # High availability and replication
    "different-replication-solutions",
    "warm-standby",
    "hot-standby",
    "logical-replication-subscription",
    # SQL command reference
    "sql-createindex",
    "sql-vacuum",
    "sql-copy",
    "sql-reindex",
    "sql-analyze",
    "sql-altersystem",
]


def chromium_cmd(html: Path, pdf: Path, profile: str) -> list[str]:
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={profile}",
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf}",
        html.as_uri(),
    ]


def pdf_page_count(data: bytes) -> int:
    """Count page objects (``/Type /Page``, not ``/Pages``) in an uncompressed-xref PDF.

    Chromium (Skia) writes page dictionaries as plain objects, so this is exact for
    its output; cross-checked against the ``/Count`` of the page tree root.
    """
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
    counts = [int(m) for m in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", data)]
    counts += [int(m) for m in re.findall(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", data)]
    if counts and max(counts) != pages:
        raise ValueError(f"page count mismatch: {pages} page objects, /Count {max(counts)}")
    return pages


def run_text(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ERROR: {exc}"
    return out.stdout.strip() or out.stderr.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "out", nargs="?", default=str(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})"
    )
    ap.add_argument(
        "--timeout", type=int, default=PRINT_TIMEOUT_S, help="seconds allowed per print"
    )
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    chromium_version = run_text([CHROMIUM, "--version"]).splitlines()[-1]
    package_version = run_text(["dpkg-query", "-W", PACKAGE])

    rows = []
    failures = []
    with tempfile.TemporaryDirectory(prefix="pgpdf-profile-") as profile:
        for stem in PAGES:
            html = HTML_DIR / f"{stem}.html"
            pdf = out_dir / f"{stem}.pdf"
            if not html.is_file():
                failures.append(f"{html}: missing")
                print(f"FAIL {stem}: source HTML missing", file=sys.stderr)
                continue
            if pdf.exists():
                pdf.unlink()
            try:
                proc = subprocess.run(
                    chromium_cmd(html, pdf, profile),
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                )
            except subprocess.TimeoutExpired:
                failures.append(f"{stem}: timed out after {args.timeout}s")
                print(f"FAIL {stem}: timed out", file=sys.stderr)
                continue
            if proc.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
                tail = (proc.stderr or proc.stdout).strip()[-500:]
                failures.append(f"{stem}: rc={proc.returncode}, no PDF written: {tail}")
                print(f"FAIL {stem}: rc={proc.returncode}\n{tail}", file=sys.stderr)
                continue
            data = pdf.read_bytes()
            try:
                pages = pdf_page_count(data)
            except ValueError as exc:
                failures.append(f"{stem}: {exc}")
                print(f"FAIL {stem}: {exc}", file=sys.stderr)
                continue
            rows.append(
                {
                    "file": pdf.name,
                    "source": str(html),
                    "pages": pages,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
            print(f"ok   {pdf.name}: {pages} pages", file=sys.stderr)

    manifest = {
        "corpus": "postgresql-pdf",
        "made_by": "bench/corpora/make_pdf_corpus.py",
        "made_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "chromium_version": chromium_version,
        "package": package_version,
        "html_dir": str(HTML_DIR),
        "command": " ".join(chromium_cmd(Path("/SRC.html"), Path("OUT.pdf"), "TMPPROFILE")),
        "files": rows,
        "failures": failures,
    }
    (out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")

    width = max((len(r["file"]) for r in rows), default=4)
    print(f"{'file':<{width}}  {'pages':>5}  {'bytes':>9}")
    for r in rows:
        print(f"{r['file']:<{width}}  {r['pages']:>5}  {r['bytes']:>9}")
    print(
        f"{'TOTAL ' + str(len(rows)) + ' files':<{width}}  {sum(r['pages'] for r in rows):>5}  "
        f"{sum(r['bytes'] for r in rows):>9}"
    )
    print(f"chromium: {chromium_version}\npackage:  {package_version}")
    if failures:
        print(f"{len(failures)} FAILURES:", *failures, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
