#!/usr/bin/env python3
"""Hostile requests against a release build of the quickstart (`--serve`), measured from outside.

    python3 benches/load/hostile-requests.py [--requests 300] [--header-kib 200] [--tenant-kib 60]

Builds `cargo build --release --example quickstart`, serves it on a free loopback port with a
fresh telemetry directory, and prints:

1. next-span export latency: after one request whose `User-Agent` is 200 KiB of `a`, and after
   one whose `User-Agent` is 200 KiB of `@`, how long until the span of the *next* (ordinary)
   request appears in the OTLP files;
2. memory: resident set size before and after N requests with 200 KiB `@` user agents sent
   as fast as four connections allow, its peak, and the `/health` telemetry backlog seen while
   they were sent;
3. cardinality: the size of `GET /metrics` after N requests with distinct 60 KiB tenant headers.

Figures only: nothing here asserts a time. Needs only the Python standard library.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def target_dir() -> Path:
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return Path(json.loads(meta.stdout)["target_directory"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, path: str, headers: dict, timeout: float = 60.0) -> tuple:
    """One HTTP/1.1 request on its own connection; returns (status, body)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return status, body


def dechunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2:]
    return b"".join(out)


def rss_kib(pid: int) -> tuple:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def span_seen(traces: Path, needle: bytes) -> bool:
    for f in traces.glob("*.jsonl"):
        try:
            if needle in f.read_bytes():
                return True
        except OSError:
            pass
    return False


def next_span_latency(port: int, traces: Path, filler: str, kib: int, tag: str) -> tuple:
    big = filler * (kib * 1024)
    t0 = time.monotonic()
    status, _ = request(port, f"/scans/big-{tag}", {"User-Agent": big})
    big_request = time.monotonic() - t0
    marker = f"next-after-{tag}-{time.time_ns()}"
    status_next, _ = request(port, f"/scans/{marker}", {})
    t1 = time.monotonic()
    while not span_seen(traces, marker.encode()):
        if time.monotonic() - t1 > 120:
            return status, big_request, float("inf")
        time.sleep(0.01)
    return status, big_request, time.monotonic() - t1


def backlog_of(health: bytes) -> dict:
    """The telemetry check's status and its span queue backlog, from a `/health` report."""
    try:
        telemetry = json.loads(health).get("checks", {}).get("telemetry", {})
    except ValueError:
        return {"status": "unparsable /health"}
    backlog = telemetry.get("signals", {}).get("spans", {}).get("backlog", {})
    return {"status": telemetry.get("status"), **backlog}


def flood(port: int, n: int, headers_of, workers: int = 4) -> None:
    todo = iter(range(n))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            try:
                request(port, f"/scans/flood-{i}", headers_of(i))
            except OSError as e:
                print(f"  request {i}: {e}", file=sys.stderr)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--header-kib", type=int, default=200)
    parser.add_argument("--tenant-kib", type=int, default=60)
    parser.add_argument("--binary", help="a quickstart binary to measure instead of building one")
    args = parser.parse_args()

    if args.binary:
        binary = Path(args.binary)
    else:
        subprocess.run(["cargo", "build", "-q", "--release", "--example", "quickstart"], cwd=ROOT, check=True)
        binary = target_dir() / "release" / "examples" / "quickstart"
    work = Path(tempfile.mkdtemp(prefix="hostile-"))
    port = free_port()
    env = dict(os.environ, STELLAOPS_TELEMETRY_DIR=str(work / "telemetry"))
    server = subprocess.Popen(
        [str(binary), "--serve", "--addr", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                request(port, "/health/live", {}, timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        traces = work / "telemetry" / "traces"
        kib = args.header_kib

        print(f"1. next-span export latency after one {kib} KiB User-Agent")
        for filler, tag in (("a", "a"), ("@", "at"), ("a", "a-again"), ("@", "at-again")):
            status, big, latency = next_span_latency(port, traces, filler, kib, tag)
            print(f"   filler {filler!r:4} status {status}: big request {big * 1000:7.1f} ms, "
                  f"next span exported {latency * 1000:7.1f} ms after its response")

        before, _ = rss_kib(server.pid)
        seen = []
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                try:
                    _, body = request(port, "/health", {}, timeout=5)
                    seen.append(backlog_of(body))
                except OSError:
                    pass
                stop.wait(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        t0 = time.monotonic()
        flood(port, args.requests, lambda i: {"User-Agent": "@" * (kib * 1024)})
        elapsed = time.monotonic() - t0
        stop.set()
        watcher.join()
        after, peak = rss_kib(server.pid)
        print(f"2. {args.requests} requests with {kib} KiB '@' user agents in {elapsed:.1f} s")
        print(f"   RSS before {before / 1024:.1f} MiB, after {after / 1024:.1f} MiB "
              f"(+{(after - before) / 1024:.1f} MiB), peak {peak / 1024:.1f} MiB")
        busy = [b for b in seen if b.get("depth")]
        print(f"   /health while flooding: {len(seen)} samples, {len(busy)} with spans queued; "
              f"largest span backlog {max((b.get('depth', 0) for b in seen), default=0)} spans, "
              f"{max((b.get('bytes', 0) for b in seen), default=0) / 1024:.0f} KiB, oldest "
              f"{max((b.get('oldest_age_seconds') or 0 for b in seen), default=0):.2f} s; "
              f"statuses {sorted({b.get('status') for b in seen})}")
        time.sleep(2)
        _, body = request(port, "/health", {})
        print(f"   /health 2 s later: {json.dumps(backlog_of(body))}")

        tkib = args.tenant_kib
        flood(port, args.requests,
              lambda i: {"X-StellaOps-Tenant": f"{i:05d}" + "t" * (tkib * 1024 - 5)})
        status, metrics = request(port, "/metrics", {})
        tenants = sum(1 for line in metrics.decode(errors="replace").splitlines() if "tenant=" in line and not line.startswith("#"))
        print(f"3. {args.requests} requests with distinct {tkib} KiB tenants: "
              f"GET /metrics {status}, {len(metrics) / 1024:.1f} KiB, {tenants} lines with a tenant label")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
