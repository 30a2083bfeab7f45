#!/usr/bin/env python3
"""Benchmark: strata-edge against nginx serving the same files from disk, side by side in one run.

Sets up, in WORKDIR: a registry (fs storage, in-process events, a local repository with anonymous
read, a deploy token), publishes one module whose zip is 1 MiB of incompressible bytes (and, for an
extra row, a second one above the edge's `cache.memory_zip_max_bytes`, which the edge streams from
its disk tier), puts an edge in front of it and warms it, then writes the bytes the edge serves to
an nginx document root. Then `wrk --latency` measures each {target} x {edge, nginx}, alternating
the servers, for several rounds after a short warm-up, and prints medians and edge/nginx ratios.

Usage: edge_vs_nginx.py --registry BIN --edge BIN --nginx BIN --workdir DIR
                        [--seconds 10] [--rounds 3] [--connections 64] [--threads 2]
                        [--disk-zip-mib 4] [--targets info,zip,disk-zip]
Defaults come from BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS, BENCH_THREADS,
BENCH_DISK_ZIP_MIB, BENCH_TARGETS. Stdlib only. Reports numbers; never fails on a threshold (it does fail if a
server answers anything but 200, since such numbers would mean nothing).
"""
import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile

REPO = "bench"
TOKEN = "strata_bench-edge-token-not-secret"
VERSION = "v1.0.0"
MIB = 1 << 20

processes = []  # (name, Popen), stopped in reverse order


def die(msg):
    raise SystemExit(f"bench-edge: {msg}")


def env_int(name, default):
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        die(f"{name}={value!r} is not an integer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record_pid(workdir, pid):
    with open(os.path.join(workdir, "pids"), "a") as f:
        f.write(f"{pid}\n")


def start(workdir, name, cmd, log_path, env=None):
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    log.close()
    processes.append((name, proc))
    record_pid(workdir, proc.pid)
    return proc


def stop_all():
    for name, proc in reversed(processes):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"bench-edge: {name} ignored SIGTERM; killing it", file=sys.stderr)
                proc.kill()
                proc.wait()
    processes.clear()


def http(method, url, body=None, headers=None, timeout=30):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def wait_ready(name, proc, url, log_path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            die(f"{name} exited with status {proc.returncode} while starting:\n{tail(log_path)}")
        try:
            status, _, _ = http("GET", url, timeout=2)
            if status == 200:
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    die(f"{name} did not answer {url} within {timeout}s:\n{tail(log_path)}")


def tail(path, lines=20):
    try:
        with open(path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
    except OSError:
        return "(no log)"


def module_zip(module, size):
    """A module zip of exactly `size` bytes: a go.mod and one file of random (incompressible)
    bytes, stored, every path under `module@version/`."""
    prefix = f"{module}@{VERSION}/"
    gomod = f"module {module}\n\ngo 1.22\n".encode()

    def build(blob_len):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for name, data in ((prefix + "go.mod", gomod), (prefix + "testdata/blob.bin", blob)):
                info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED
                z.writestr(info, data[:blob_len] if data is blob else data)
        return buf.getvalue()

    blob = random.Random(size).randbytes(size)
    overhead = len(build(0))
    if overhead >= size:
        die(f"a zip of {size} bytes is too small")
    data = build(size - overhead)
    if len(data) != size:
        die(f"built a zip of {len(data)} bytes, wanted {size}")
    return data


def registry_config(workdir, http_port, grpc_port):
    token_sha = hashlib.sha256(TOKEN.encode()).hexdigest()
    return f"""\
storage = {{ kind = "fs", root = "{workdir}/registry-data" }}
events = {{ kind = "memory" }}

[server]
http = "127.0.0.1:{http_port}"
grpc = "127.0.0.1:{grpc_port}"
spool_dir = "{workdir}/spool"

[[repositories]]
name = "{REPO}"
kind = "local"
anonymous_read = true

[[tokens]]
name = "bench"
sha256 = "{token_sha}"
permissions = {{ {REPO} = ["read", "deploy"] }}
"""


def edge_config(workdir, port, reg_http, reg_grpc):
    return f"""\
events = {{ kind = "none" }}

[server]
listen = "127.0.0.1:{port}"

[[routes]]
prefix = "/"
repository = "{REPO}"

[[registries]]
name = "local"
grpc = "http://127.0.0.1:{reg_grpc}"
http = "http://127.0.0.1:{reg_http}"

[cache]
dir = "{workdir}/edge-cache"
"""


def nginx_config(workdir, port):
    t = f"{workdir}/nginx-tmp"
    return f"""\
daemon off;
master_process on;
worker_processes auto;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    types {{
        application/json info;
        text/plain mod;
        application/zip zip;
    }}
    default_type application/octet-stream;
    access_log {workdir}/nginx-access.log combined;
    client_body_temp_path {t}/body;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    server_tokens off;

    server {{
        listen 127.0.0.1:{port};
        root {workdir}/www;
        location / {{
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
    }}
}}
"""


def publish(reg_http, data):
    status, _, body = http(
        "PUT",
        f"http://127.0.0.1:{reg_http}/api/repos/{REPO}/upload",
        body=data,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/zip"},
        timeout=120,
    )
    if status != 201:
        die(f"publishing failed with {status}: {body.decode(errors='replace')}")


def warm(edge_url, path, want):
    """Requests `path` until the edge answers from the tier `want`; returns the bytes."""
    seen = []
    for _ in range(5):
        status, headers, body = http("GET", edge_url + path)
        cache = {k.lower(): v for k, v in headers.items()}.get("x-strata-cache", "-")
        seen.append(f"{status} {cache}")
        if status != 200:
            die(f"edge answered {status} for {path}: {body.decode(errors='replace')}")
        if cache == want:
            return body
    die(f"edge never answered {path} from {want}: {', '.join(seen)}")


# ---- wrk ----------------------------------------------------------------------------------------

UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
BYTES = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def parse_wrk(out):
    def find(pattern):
        m = re.search(pattern, out, re.MULTILINE)
        if not m:
            die(f"could not read {pattern!r} from wrk's output:\n{out}")
        return m

    rps = float(find(r"^Requests/sec:\s+([\d.]+)").group(1))
    m = find(r"^\s+99%\s+([\d.]+)(us|ms|s|m|h)\s*$")
    p99 = float(m.group(1)) * UNITS[m.group(2)]
    m = find(r"^Transfer/sec:\s+([\d.]+)(B|KB|MB|GB|TB)\s*$")
    transfer = float(m.group(1)) * BYTES[m.group(2)]
    requests = int(find(r"^\s+(\d+) requests in").group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "p99": p99,
        "bps": transfer,
        "requests": requests,
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def cpu_seconds(pids):
    """User + system CPU seconds of `pids` (clock ticks from /proc/<pid>/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def process_tree(pid):
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return pids


def memory_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def run_wrk(args, url, seconds, pids):
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency", url]
    before = cpu_seconds(pids)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    after = cpu_seconds(pids)
    if proc.returncode != 0:
        die(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
    result = parse_wrk(proc.stdout)
    if result["non2xx"]:
        die(f"{url} answered {result['non2xx']} non-2xx responses under load:\n{proc.stdout}")
    result["cpu"] = after - before
    result["raw"] = proc.stdout
    return result


# ---- main ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", required=True)
    ap.add_argument("--edge", required=True)
    ap.add_argument("--nginx", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--seconds", type=int, default=env_int("BENCH_SECONDS", 10))
    ap.add_argument("--rounds", type=int, default=env_int("BENCH_ROUNDS", 3))
    ap.add_argument("--connections", type=int, default=env_int("BENCH_CONNECTIONS", 64))
    ap.add_argument("--threads", type=int, default=env_int("BENCH_THREADS", 2))
    ap.add_argument("--disk-zip-mib", type=int, default=env_int("BENCH_DISK_ZIP_MIB", 4))
    ap.add_argument("--warmup-seconds", type=int, default=2)
    ap.add_argument("--targets", default=os.environ.get("BENCH_TARGETS", "info,zip,disk-zip"),
                    help="comma-separated subset of info, zip, disk-zip")
    args = ap.parse_args()
    if args.seconds < 1 or args.rounds < 1 or args.connections < 1 or args.threads < 1:
        die("--seconds, --rounds, --connections and --threads must be at least 1")
    if args.threads > args.connections:
        die("wrk needs at least as many connections as threads")

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        run(args)
    finally:
        stop_all()


def run(args):
    work = os.path.abspath(args.workdir)
    os.makedirs(work, exist_ok=True)
    # nginx's workers run as an unprivileged user when started by root: they must reach the files.
    os.chmod(work, 0o755)
    for d in ("registry-data", "spool", "edge-cache", "www", "nginx-tmp"):
        os.makedirs(os.path.join(work, d), exist_ok=True)

    reg_http, reg_grpc, edge_port, nginx_port = (free_port() for _ in range(4))

    # Registry, with the modules published.
    with open(f"{work}/registry.toml", "w") as f:
        f.write(registry_config(work, reg_http, reg_grpc))
    reg_log = f"{work}/registry.log"
    reg = start(work, "registry", [args.registry, "--config", f"{work}/registry.toml"], reg_log,
                env={**os.environ, "RUST_LOG": "warn"})
    wait_ready("registry", reg, f"http://127.0.0.1:{reg_http}/healthz", reg_log)

    wanted = {t.strip() for t in args.targets.split(",") if t.strip()}
    unknown = wanted - {"info", "zip", "disk-zip"}
    if unknown or not wanted:
        die(f"--targets: expected a subset of info, zip, disk-zip, got {args.targets!r}")
    targets = []
    if "info" in wanted:
        targets.append(("info", "example.com/bench/onemib", ".info", MIB, "hit-memory"))
    if "zip" in wanted:
        targets.append(("zip 1MiB", "example.com/bench/onemib", ".zip", MIB, "hit-memory"))
    if "disk-zip" in wanted and args.disk_zip_mib > 0:
        targets.append((f"zip {args.disk_zip_mib}MiB", "example.com/bench/large", ".zip",
                        args.disk_zip_mib * MIB, "hit-disk"))
    if not targets:
        die("no targets left to measure (disk-zip needs --disk-zip-mib > 0)")
    for module, size in sorted({(t[1], t[3]) for t in targets}):
        publish(reg_http, module_zip(module, size))

    # Edge: JSON access log (target strata_edge::access, level info) on stderr, to a file.
    with open(f"{work}/edge.toml", "w") as f:
        f.write(edge_config(work, edge_port, reg_http, reg_grpc))
    edge_log = f"{work}/edge-access.log"
    edge = start(work, "edge", [args.edge, "--config", f"{work}/edge.toml"], edge_log,
                 env={**os.environ, "RUST_LOG": "info"})
    edge_url = f"http://127.0.0.1:{edge_port}"
    wait_ready("edge", edge, f"{edge_url}/healthz", edge_log)

    # Warm the edge; write the very bytes it serves where nginx serves them from.
    sizes = {}
    for name, module, ext, _, tier in targets:
        path = f"/{module}/@v/{VERSION}{ext}"
        body = warm(edge_url, path, tier)
        dest = f"{work}/www{path}"
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(body)
        os.chmod(dest, 0o644)
        sizes[name] = len(body)
    for root, dirs, _ in os.walk(f"{work}/www"):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)

    with open(f"{work}/nginx.conf", "w") as f:
        f.write(nginx_config(work, nginx_port))
    nginx_log = f"{work}/nginx-stderr.log"
    ngx = start(work, "nginx", [args.nginx, "-c", f"{work}/nginx.conf", "-p", work, "-e",
                                f"{work}/nginx-error.log"], nginx_log)
    nginx_url = f"http://127.0.0.1:{nginx_port}"
    first = targets[0]
    wait_ready("nginx", ngx, f"{nginx_url}/{first[1]}/@v/{VERSION}{first[2]}", nginx_log)
    for name, module, ext, _, _ in targets:
        path = f"/{module}/@v/{VERSION}{ext}"
        a = http("GET", edge_url + path)[2]
        b = http("GET", nginx_url + path)[2]
        if a != b:
            die(f"edge and nginx serve different bytes for {path}")

    servers = {
        "edge": (edge_url, lambda: [edge.pid]),
        "nginx": (nginx_url, lambda: process_tree(ngx.pid)),
    }
    cores = os.cpu_count() or 0
    print(f"edge vs nginx: warm GETs, wrk -t{args.threads} -c{args.connections} "
          f"-d{args.seconds}s --latency, {args.rounds} rounds alternating the servers "
          f"(after a {args.warmup_seconds}s warm-up each)")
    print(f"  wrk, the edge and nginx share this machine's {cores} cores; the edge's tokio runtime "
          f"and nginx's workers (worker_processes auto) get {cores} threads each")
    print("  logging: both on, to files (edge: JSON access log on stderr to a file; nginx: "
          "access_log combined) — production-like")
    print("  zip bytes are random (incompressible); nginx serves the bytes fetched from the edge "
          "(identical, checked) from disk, with sendfile; both keep connections alive "
          "(nginx keepalive_requests raised so it does not close one every 1000 requests)")
    for name, _, _, _, tier in targets:
        where = ("memory tier" if tier == "hit-memory"
                 else "disk tier: above cache.memory_zip_max_bytes, read in chunks")
        print(f"  {name:<10} {sizes[name]:>9} bytes, edge answers from its {where} ({tier})")
    sys.stdout.flush()

    # Warm-up, then the measured rounds.
    for name, module, ext, _, _ in targets:
        path = f"/{module}/@v/{VERSION}{ext}"
        for server, (url, pids) in servers.items():
            run_wrk(args, url + path, args.warmup_seconds, pids())
    results = {(t[0], s): [] for t in targets for s in servers}
    order = list(servers)
    for r in range(args.rounds):
        for name, module, ext, _, _ in targets:
            path = f"/{module}/@v/{VERSION}{ext}"
            for server in (order if r % 2 == 0 else order[::-1]):
                url, pids = servers[server]
                res = run_wrk(args, url + path, args.seconds, pids())
                results[(name, server)].append(res)
                print(f"  round {r + 1} {name:<10} {server:<5} {res['rps']:>10.0f} req/s  "
                      f"p99 {res['p99'] * 1000:7.2f} ms", file=sys.stderr)
                if res["socket_errors"]:
                    print(f"  ({server} {name}: {res['socket_errors']})", file=sys.stderr)

    print()
    print(f"{'target':<10} {'server':<6} {'req/s':>10} {'p99 ms':>8} {'MiB/s':>9} "
          f"{'CPU us/req':>10}   (medians of {args.rounds})")
    ratios = []
    for name, *_ in targets:
        med = {}
        for server in servers:
            runs = results[(name, server)]
            m = {
                "rps": statistics.median(x["rps"] for x in runs),
                "p99": statistics.median(x["p99"] for x in runs),
                "bps": statistics.median(x["bps"] for x in runs),
                "cpu": statistics.median(x["cpu"] / max(x["requests"], 1) for x in runs),
            }
            med[server] = m
            print(f"{name:<10} {server:<6} {m['rps']:>10.0f} {m['p99'] * 1000:>8.2f} "
                  f"{m['bps'] / MIB:>9.1f} {m['cpu'] * 1e6:>10.1f}")
        e, n = med["edge"], med["nginx"]
        # Each round measured edge and nginx back to back: the ratio within a round is immune to
        # load that drifts between rounds (other work on the machine).
        paired = statistics.median(
            a["rps"] / b["rps"] for a, b in zip(results[(name, "edge")], results[(name, "nginx")])
        )
        ratios.append((name, e["rps"] / n["rps"], paired, e["p99"] / n["p99"],
                       e["cpu"] / n["cpu"] if n["cpu"] else 0))
    print()
    print(f"{'edge/nginx':<10} {'req/s':>8} {'paired':>8} {'p99':>8} {'CPU/req':>8}   "
          f"(ratios of the medians; paired = median of the per-round req/s ratios; "
          f"aim: req/s >= 0.8)")
    for name, rps, paired, p99, cpu in ratios:
        print(f"{name:<10} {rps:>8.2f} {paired:>8.2f} {p99:>8.2f} {cpu:>8.2f}")
    edge_mem = memory_kib(edge.pid)
    ngx_rss = sum(memory_kib(p).get("VmRSS", 0) for p in process_tree(ngx.pid))
    print()
    print(f"edge RSS after the run: VmRSS {edge_mem.get('VmRSS', 0) / 1024:.1f} MiB, "
          f"VmHWM (peak) {edge_mem.get('VmHWM', 0) / 1024:.1f} MiB "
          f"(nginx master + workers VmRSS: {ngx_rss / 1024:.1f} MiB)")
    with open(edge_log, "rb") as f:
        edge_lines = sum(1 for _ in f)
    with open(f"{work}/nginx-access.log", "rb") as f:
        nginx_lines = sum(1 for _ in f)
    print(f"access log lines written: edge {edge_lines}, nginx {nginx_lines}")


if __name__ == "__main__":
    main()
