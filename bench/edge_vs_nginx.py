#!/usr/bin/env python3
"""Benchmark: strata-edge against nginx serving the same files from disk, side by side in one run.

Sets up, in WORKDIR: a registry (fs storage, in-process events, a local repository with anonymous
read, a deploy token), publishes one module whose zip is 1 MiB of incompressible bytes (and, for an
extra row, a second one above the edge's `cache.memory_zip_max_bytes`, which the edge streams from
its disk tier), puts an edge in front of it and warms it, then writes the bytes the edge serves to
an nginx document root. Then `wrk --latency` measures each {target} x {edge, nginx}, alternating
the servers, for several rounds after a short warm-up, and prints medians and edge/nginx ratios.

With --baseline-edge, a second edge from that binary (its own config, cache directory and port, in
front of the same registry, warmed the same way) joins every round's alternation, gets its own
rows, and the summary adds current/baseline ratios: "no regression" measured in the same run.
--baseline-server TOML adds lines to the baseline's [server] section: with the same binary
as --edge and 'sendfile = false' it measures one build with and without sendfile.
--edge-env KEY=VALUE (repeatable) sets a variable for the current edge only, e.g.
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 to measure the cost of tracing. Every OTEL_*
variable of the caller's environment is removed from the registry's and both edges' environments,
so tracing is off unless --edge-env turns it on.

More servers in the same rounds, each with its own rows and edge/X ratios:
- --all-in-one BIN: `BIN up` (the `strata` CLI, what `make run` starts: registry, edge and sync
  worker in one process) with its embedded defaults in a fresh --data directory on free ports.
  The same module zips are published to its local repository `private` (HTTP publish API, admin
  token given through STRATA_ADMIN_TOKEN) and read through `/`, its virtual repository `go`.
  One flag differs from the defaults: --upstream (the `gocache` remote's) is an empty local
  GOPROXY, because a publish to `private` first asks that upstream whether the path is public
  (the shadowing check) and the bench must not depend on proxy.golang.org. Its `.info` carries
  its own publish time; its `.mod` and `.zip` are checked byte-identical to the edge's.
- --peer NAME=URL[@PID] (repeatable): any GOPROXY already running (a goproxy, an Athens...). The
  bench cannot publish to a peer, so it writes every module it publishes as a GOPROXY tree
  (`<module>/@v/list`, `<module>/@v/<version>.{info,mod,zip}`, the edge's bytes) to
  --goproxy-dir (default WORKDIR/goproxy; prints the path) before it first asks a peer. Start the
  peer beforehand with that directory as its upstream: GOPROXY=file:///that/dir (goproxy,
  Athens's go-command fetcher), plus GONOSUMDB=example.com/bench (or GOSUMDB=off) since the
  modules are in no checksum database; or any static file server rooted there. The zips and
  go.mod files are the same bytes every run (fixed seeds); the `.info` Time is the publish time.
  The bench fetches each file through the peer twice (warming it) and dies unless `.zip` and
  `.mod` are byte-identical to the edge's and `.info` names the same version (a Time from an
  earlier run's tree, or a re-encoded `.info`, is reported, not fatal). With @PID (a server's
  main or master process: its children are counted too) the peer's CPU and RSS are measured.

Two more sections after the wrk tables:
- Fan-out (--fanout-mib, default 64; 0 leaves it out): one zip of that many MiB of random bytes
  (in the edges' disk tier), then for N in --fanout-clients: N `curl` processes started together,
  each one full GET to /dev/null, against the edge(s), nginx (no log), strata up and each peer,
  alternating over the rounds. Reports the wall time until the last curl exits (median) and the
  server's peak RSS growth (VmHWM reset through /proc/PID/clear_refs, minus VmRSS before; largest
  of the rounds); dies unless every download is a 200 of the full size.
- Cold fill (--cold-mbps, default 100 Mbit/s; 0 leaves it out): bench/goproxy_fixture.py serves
  a module with --cold-mib (16) MiB zips, throttled per connection, as the upstream of a registry
  remote repository `cold` (with no_sum covering the module, since the fixture is in no checksum
  database), routed at `/cold/` on the edge(s). Every round fetches a version nobody has fetched
  (v1.0.1, v1.0.2, ...) through the edge and the same file straight from the fixture (the
  floor); reports time to first byte and total time, medians and edge/upstream ratios.

Usage: edge_vs_nginx.py --registry BIN --edge BIN --nginx BIN --workdir DIR
                        [--seconds 10] [--rounds 3] [--connections 64] [--threads 2]
                        [--disk-zip-mib 4] [--targets info,zip,disk-zip]
                        [--baseline-edge BIN] [--edge-env KEY=VALUE ...]
                        [--all-in-one BIN] [--peer NAME=URL[@PID] ...] [--goproxy-dir DIR]
                        [--fanout-mib 64] [--fanout-clients 1,10,50,200]
                        [--cold-mbps 100] [--cold-mib 16]
Defaults come from BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS, BENCH_THREADS,
BENCH_DISK_ZIP_MIB, BENCH_TARGETS, BENCH_BASELINE_EDGE and BENCH_EDGE_ENV (KEY=VALUE pairs separated
by spaces, shell quoting allowed; ignored if any --edge-env is given), BENCH_ALL_IN_ONE (a path;
"off" leaves the row out), BENCH_PEERS ("NAME=URL[@PID] NAME=URL ...", ignored if any --peer is
given), BENCH_GOPROXY_DIR, BENCH_FANOUT_MIB, BENCH_FANOUT_CLIENTS, BENCH_COLD_MBPS and
BENCH_COLD_MIB. Needs wrk and curl. Stdlib only. Reports numbers; never fails on a threshold (it
does fail if a server answers anything but 200, or other bytes than the edge, since such numbers
would mean nothing).
"""
import argparse
import hashlib
import http.client as http_client
import io
import json
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import bench_support
from bench_support import die, env_int, free_port, http, start, tail, wait_ready

bench_support.NAME = "bench-edge"

REPO = "bench"
TOKEN = "strata_bench-edge-token-not-secret"
VERSION = "v1.0.0"
MIB = 1 << 20
FANOUT_MODULE = "example.com/bench/fanout"
COLD_REPO = "cold"
COLD_MODULE = "example.com/bench/cold"
AIO = "strata up"
ACCESS_TARGET = b"strata_edge::access"  # the edge's access-log lines (JSON, on stderr)
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "goproxy_fixture.py")

def env_float(name, default):
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return float(value)
    except ValueError:
        die(f"{name}={value!r} is not a number")


def module_zip(module, size, version=VERSION, seed=None):
    """A module zip of exactly `size` bytes: a go.mod and one file of random (incompressible)
    bytes, stored, every path under `module@version/`. The bytes depend only on the arguments
    (the random bytes on `seed`, default `size`)."""
    prefix = f"{module}@{version}/"
    gomod = f"module {module}\n\ngo 1.22\n".encode()

    def build(blob_len):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for name, data in ((prefix + "go.mod", gomod), (prefix + "testdata/blob.bin", blob)):
                info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED
                z.writestr(info, data[:blob_len] if data is blob else data)
        return buf.getvalue()

    blob = random.Random(size if seed is None else seed).randbytes(size)
    overhead = len(build(0))
    if overhead >= size:
        die(f"a zip of {size} bytes is too small")
    data = build(size - overhead)
    if len(data) != size:
        die(f"built a zip of {len(data)} bytes, wanted {size}")
    return data


def registry_config(workdir, http_port, grpc_port, cold_url=None):
    token_sha = hashlib.sha256(TOKEN.encode()).hexdigest()
    # The cold-fill upstream: a remote repository whose fixture is in no checksum database, so
    # its module is listed in no_sum (fetched without checksum-database verification).
    cold = "" if cold_url is None else f"""
[[repositories]]
name = "{COLD_REPO}"
kind = "remote"
anonymous_read = true
upstream = {{ url = "{cold_url}" }}
no_sum = ["{COLD_MODULE}"]
"""
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
{cold}
[[tokens]]
name = "bench"
sha256 = "{token_sha}"
permissions = {{ {REPO} = ["read", "deploy"] }}
"""


def edge_config(cache_dir, port, admin_port, reg_http, reg_grpc, cold=False, server_extra=""):
    # admin_listen (/metrics, /readyz) on a free port rather than the default 127.0.0.1:9181,
    # which two edges cannot share (nor an edge and anything else using it); None leaves the line
    # out, for edges older than that setting.
    admin = "" if admin_port is None else f'admin_listen = "127.0.0.1:{admin_port}"\n'
    cold_route = "" if not cold else f"""
[[routes]]
prefix = "/{COLD_REPO}/"
repository = "{COLD_REPO}"
"""
    return f"""\
events = {{ kind = "none" }}

[server]
listen = "127.0.0.1:{port}"
{admin}{server_extra}
[[routes]]
prefix = "/"
repository = "{REPO}"
{cold_route}
[[registries]]
name = "local"
grpc = "http://127.0.0.1:{reg_grpc}"
http = "http://127.0.0.1:{reg_http}"

[cache]
dir = "{cache_dir}"
"""


def nginx_config(workdir, port, name="nginx", access_log=True):
    """nginx serving {workdir}/www on `port`; `name` keeps each instance's files apart. Without
    `access_log`, nginx at its fastest: the static-file limit of the machine."""
    t = f"{workdir}/{name}-tmp"
    log = f"access_log {workdir}/{name}-access.log combined;" if access_log else "access_log off;"
    return f"""\
daemon off;
master_process on;
worker_processes auto;
pid {workdir}/{name}.pid;
error_log {workdir}/{name}-error.log warn;

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
    {log}
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


def publish(reg_http, data, repo=REPO, what="the registry"):
    status, _, body = http(
        "PUT",
        f"http://127.0.0.1:{reg_http}/api/repos/{repo}/upload",
        body=data,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/zip"},
        timeout=120,
    )
    if status != 201:
        die(f"publishing to {what} (repository {repo}) failed with {status}: "
            f"{body.decode(errors='replace')}")


def warm(edge_url, path, want, name="edge"):
    """Requests `path` until the edge answers from the tier `want`; returns the bytes."""
    seen = []
    for _ in range(5):
        status, headers, body = http("GET", edge_url + path)
        cache = {k.lower(): v for k, v in headers.items()}.get("x-strata-cache", "-")
        seen.append(f"{status} {cache}")
        if status != 200:
            die(f"{name} answered {status} for {path}: {body.decode(errors='replace')}")
        if cache == want:
            return body
    die(f"{name} never answered {path} from {want}: {', '.join(seen)}")


def parse_env_pairs(pairs, source):
    """KEY=VALUE strings -> [(key, value)], in order; dies on anything else."""
    out = []
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            die(f"{source}: expected KEY=VALUE, got {pair!r}")
        out.append((key, value))
    return out


def server_env(extra=()):
    """The caller's environment without its OTEL_* variables (so tracing is off unless asked
    for), then `extra` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra)
    return env


def start_edge(work, name, binary, conf_path, cache_dir, ports, registry_ports, log_path, env,
               cold=False, server_extra=""):
    """Writes an edge's config, starts it and waits for /healthz; returns (Popen, url)."""
    port, admin_port = ports
    with open(conf_path, "w") as f:
        f.write(edge_config(cache_dir, port, admin_port, *registry_ports, cold=cold,
                            server_extra=server_extra))
    proc = start(work, name, [binary, "--config", conf_path], log_path, env=env)
    url = f"http://127.0.0.1:{port}"
    what = f"{name} ({binary}, config {conf_path})"
    if wait_ready(what, proc, f"{url}/healthz", log_path, exit_fatal=False):
        return proc, url
    log = tail(log_path)
    if "unknown field `admin_listen`" not in log:
        die(f"{what} exited with status {proc.returncode} while starting:\n{log}")
    # Older than server.admin_listen: such an edge has no admin listener, so nothing to move.
    print(f"bench-edge: {name} does not know server.admin_listen (older build): "
          f"starting it without that line", file=sys.stderr)
    with open(conf_path, "w") as f:
        f.write(edge_config(cache_dir, port, None, *registry_ports, cold=cold,
                            server_extra=server_extra))
    proc = start(work, name, [binary, "--config", conf_path], log_path, env=env)
    wait_ready(what, proc, f"{url}/healthz", log_path)
    return proc, url


def describe_binary(path):
    try:
        st = os.stat(path)
    except OSError as e:
        return f"{path} ({e.strerror})"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime))
    return f"{path} (modified {when}, {st.st_size / MIB:.1f} MiB)"


def write_atomic(path, data, mode=0o644):
    """Writes `path` through a temporary file and a rename: a server reading the directory
    meanwhile (a peer) never sees a partial file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_goproxy_version(root, module, version, files, versions):
    """`files` ({"info": bytes, "mod": bytes, "zip": bytes}) as `module`@`version` of the GOPROXY
    tree at `root`, with `versions` as its list."""
    base = f"{root}/{module}/@v"
    for ext, data in files.items():
        write_atomic(f"{base}/{version}.{ext}", data)
    write_atomic(f"{base}/list", "".join(f"{v}\n" for v in versions).encode())


def chmod_dirs(root):
    """Directories readable by nginx's unprivileged workers."""
    os.chmod(root, 0o755)
    for top, dirs, _ in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(top, d), 0o755)


def info_version(data):
    try:
        doc = json.loads(data)
        return doc.get("Version"), doc.get("Time")
    except (ValueError, AttributeError):
        return None, None


def start_fixture(work, name, tree, port, mbps):
    """bench/goproxy_fixture.py serving the GOPROXY tree `tree`; returns (Popen, url)."""
    log = f"{work}/{name.replace(' ', '-')}.log"
    proc = start(work, name, [sys.executable, FIXTURE, "--dir", tree, "--port", str(port),
                              "--mbps", str(mbps)], log)
    url = f"http://127.0.0.1:{port}"
    wait_ready(name, proc, f"{url}/healthz", log)
    return proc, url


def parse_peers(words, source, taken):
    """NAME=URL[@PID] strings -> [(name, url, pid or None)]."""
    peers = []
    for word in words:
        name, eq, rest = word.partition("=")
        name = name.strip()
        if not eq or not name or not rest:
            die(f"{source}: expected NAME=URL[@PID], got {word!r}")
        url, pid = rest, None
        head, at, tail = rest.rpartition("@")
        if at and tail.isdigit():
            url, pid = head, int(tail)
            if not os.path.isdir(f"/proc/{pid}"):
                die(f"{source}: {word!r}: no process {pid}")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            die(f"{source}: {word!r}: {url!r} is not an http(s) URL")
        if name in taken:
            die(f"{source}: the name {name!r} is taken (by another peer or a server of the bench)")
        taken.add(name)
        peers.append((name, url.rstrip("/"), pid))
    return peers


def timed_get(url, timeout=300):
    """One GET on a new connection: (status, headers, time to the first body byte, total time,
    body length, body SHA-256)."""
    parts = urllib.parse.urlsplit(url)
    cls = http_client.HTTPSConnection if parts.scheme == "https" else http_client.HTTPConnection
    t0 = time.perf_counter()
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        resp = conn.getresponse()
        first = resp.read(1)
        ttfb = time.perf_counter() - t0
        digest = hashlib.sha256(first)
        n = len(first)
        while True:
            chunk = resp.read(MIB)
            if not chunk:
                break
            digest.update(chunk)
            n += len(chunk)
        total = time.perf_counter() - t0
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, ttfb, total, n, \
            digest.hexdigest()
    finally:
        conn.close()


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
    # A server without a known pid (a peer without @PID): no CPU figure.
    result["cpu"] = after - before if pids else None
    result["raw"] = proc.stdout
    return result


# ---- fan-out and cold fill ----------------------------------------------------------------------


def rss_kib(pids, key):
    """Sum of one /proc/<pid>/status figure (VmRSS, VmHWM) over `pids`, in KiB."""
    total = 0
    for pid in pids:
        try:
            total += memory_kib(pid).get(key, 0)
        except OSError:
            pass
    return total


def reset_peak(pids):
    """Resets VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`); False if any fails."""
    ok = bool(pids)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


def fanout_once(url, clients, size, out_path, err_path):
    """`clients` curl processes started together, each one full GET of `url` to /dev/null;
    returns the seconds from starting the first to the last one's exit. Each curl appends one
    short line (`status size`) to `out_path` (O_APPEND: one write each, not interleaved)."""
    cmd = ["curl", "-sS", "-o", "/dev/null", "--max-time", "600",
           "-w", "%{http_code} %{size_download}\n", url]
    for path in (out_path, err_path):
        open(path, "wb").close()
    out = os.open(out_path, os.O_WRONLY | os.O_APPEND)
    err = os.open(err_path, os.O_WRONLY | os.O_APPEND)
    procs = []
    try:
        t0 = time.perf_counter()
        for _ in range(clients):
            procs.append(subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL))
        codes = [p.wait() for p in procs]
        elapsed = time.perf_counter() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        os.close(out)
        os.close(err)
    with open(out_path) as f:
        lines = f.read().splitlines()
    want = f"200 {size}"
    bad = [line for line in lines if line != want]
    failed = sum(1 for c in codes if c != 0)
    if failed or bad or len(lines) != clients:
        die(f"fan-out of {clients} GETs of {url}: {failed} curl failures, {len(lines)} answers, "
            f"{len(bad)} not '{want}' (e.g. {bad[:3]}); curl said: {tail(err_path, 5)}")
    return elapsed


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
    ap.add_argument("--baseline-edge", default=os.environ.get("BENCH_BASELINE_EDGE") or None,
                    metavar="BIN",
                    help="also measure an edge started from BIN, side by side with --edge")
    ap.add_argument("--baseline-server", default=os.environ.get("BENCH_BASELINE_SERVER", ""),
                    metavar="TOML",
                    help="extra lines for the baseline edge's [server] section, e.g. "
                         "'sendfile = false' to measure one build with and without a setting")
    ap.add_argument("--edge-env", action="append", metavar="KEY=VALUE",
                    help="a variable for the current edge only (repeatable; default: the "
                         "space-separated pairs of BENCH_EDGE_ENV)")
    ap.add_argument("--all-in-one", default=os.environ.get("BENCH_ALL_IN_ONE") or None,
                    metavar="BIN",
                    help="also measure `BIN up` (the strata CLI: every tier in one process, "
                         "embedded defaults); 'off' leaves it out")
    ap.add_argument("--peer", action="append", metavar="NAME=URL[@PID]",
                    help="also measure a GOPROXY already running at URL whose upstream is "
                         "--goproxy-dir (repeatable; default: the space-separated entries of "
                         "BENCH_PEERS); @PID measures its CPU and RSS")
    ap.add_argument("--goproxy-dir", default=os.environ.get("BENCH_GOPROXY_DIR") or None,
                    metavar="DIR",
                    help="where the published modules are written as a GOPROXY tree for peers "
                         "(default WORKDIR/goproxy)")
    ap.add_argument("--fanout-mib", type=int, default=env_int("BENCH_FANOUT_MIB", 64),
                    help="size of the fan-out zip (0 leaves the fan-out out)")
    ap.add_argument("--fanout-clients",
                    default=os.environ.get("BENCH_FANOUT_CLIENTS", "1,10,50,200"),
                    help="comma-separated numbers of concurrent downloads")
    ap.add_argument("--cold-mbps", type=float, default=env_float("BENCH_COLD_MBPS", 100.0),
                    help="bandwidth of the cold-fill upstream per connection, Mbit/s (0 leaves "
                         "the cold fill out)")
    ap.add_argument("--cold-mib", type=int, default=env_int("BENCH_COLD_MIB", 16),
                    help="size of the cold-fill zips")
    args = ap.parse_args()
    if args.seconds < 1 or args.rounds < 1 or args.connections < 1 or args.threads < 1:
        die("--seconds, --rounds, --connections and --threads must be at least 1")
    if args.threads > args.connections:
        die("wrk needs at least as many connections as threads")
    if args.edge_env is not None:
        args.edge_env = parse_env_pairs(args.edge_env, "--edge-env")
    else:
        raw = os.environ.get("BENCH_EDGE_ENV", "")
        try:
            words = shlex.split(raw)
        except ValueError as e:
            die(f"BENCH_EDGE_ENV={raw!r}: {e}")
        args.edge_env = parse_env_pairs(words, "BENCH_EDGE_ENV")
    if args.fanout_mib < 0 or args.fanout_mib == 1:
        die("--fanout-mib must be 0 (no fan-out) or at least 2 (above the edge's "
            "cache.memory_zip_max_bytes, 1 MiB by default, so it lives in the disk tier)")
    try:
        args.fanout_clients = [int(c) for c in args.fanout_clients.split(",") if c.strip()]
    except ValueError:
        die(f"--fanout-clients: expected comma-separated integers, got {args.fanout_clients!r}")
    if args.fanout_mib and (not args.fanout_clients or min(args.fanout_clients) < 1):
        die("--fanout-clients needs at least one number, each at least 1")
    if args.cold_mbps < 0 or args.cold_mib < 1:
        die("--cold-mbps must be at least 0 (0: no cold fill) and --cold-mib at least 1")
    if args.fanout_mib and not shutil.which("curl"):
        die("the fan-out needs curl on PATH (or --fanout-mib 0)")
    if args.all_in_one and args.all_in_one.strip().lower() in ("off", "none", "0", "no"):
        args.all_in_one = None
    taken = {"edge", "nginx", "nginx (no log)", AIO, "edge (baseline)", "upstream"}
    if args.peer is not None:
        args.peers = parse_peers(args.peer, "--peer", taken)
    else:
        raw = os.environ.get("BENCH_PEERS", "")
        try:
            words = shlex.split(raw)
        except ValueError as e:
            die(f"BENCH_PEERS={raw!r}: {e}")
        args.peers = parse_peers(words, "BENCH_PEERS", taken)
    binaries = [("--registry", args.registry), ("--edge", args.edge), ("--nginx", args.nginx)]
    if args.baseline_edge:
        binaries.append(("--baseline-edge", args.baseline_edge))
    if args.all_in_one:
        binaries.append(("--all-in-one", args.all_in_one))
        args.all_in_one = os.path.abspath(args.all_in_one)
    for flag, path in binaries:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            die(f"{flag} {path}: not an executable file")
    if args.baseline_edge:
        args.baseline_edge = os.path.abspath(args.baseline_edge)
        if os.path.samefile(args.baseline_edge, args.edge) and not args.baseline_server:
            print(f"bench-edge: warning: --baseline-edge is the same file as --edge ({args.edge}): "
                  f"this measures the edge against itself", file=sys.stderr)

    bench_support.run_then_stop_all(run, args)


def run(args):
    work = os.path.abspath(args.workdir)
    os.makedirs(work, exist_ok=True)
    # nginx's workers run as an unprivileged user when started by root: they must reach the files.
    os.chmod(work, 0o755)
    for d in ("registry-data", "spool", "edge-cache", "www", "nginx-tmp", "nginx-nolog-tmp"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    baseline = "edge (baseline)" if args.baseline_edge else None
    if baseline:
        os.makedirs(os.path.join(work, "edge-baseline-cache"), exist_ok=True)
    tree_dir = os.path.abspath(args.goproxy_dir or f"{work}/goproxy")
    os.makedirs(tree_dir, exist_ok=True)

    reg_http, reg_grpc, edge_port, edge_admin, nginx_port, base_port, base_admin, nolog_port = (
        free_port() for _ in range(8))

    # The cold-fill upstream, before the registry whose remote repository points at it: every
    # version that will be fetched (one per round and edge) written up front, never fetched
    # before by anyone.
    cold = None
    if args.cold_mbps > 0:
        cold_servers = ([baseline] if baseline else []) + ["edge"]
        versions = [f"v1.0.{i + 1}" for i in range(args.rounds * len(cold_servers))]
        cold_tree = f"{work}/cold-upstream"
        expected = {}
        for v in versions:
            data = module_zip(COLD_MODULE, args.cold_mib * MIB, v, seed=f"{COLD_MODULE}@{v}")
            info = json.dumps({"Version": v, "Time": "2024-01-01T00:00:00Z"}).encode()
            gomod = f"module {COLD_MODULE}\n\ngo 1.22\n".encode()
            write_goproxy_version(cold_tree, COLD_MODULE, v,
                                  {"info": info, "mod": gomod, "zip": data}, versions)
            expected[v] = (len(data), hashlib.sha256(data).hexdigest())
        _, cold_url = start_fixture(work, "cold upstream", cold_tree, free_port(), args.cold_mbps)
        cold = {"servers": cold_servers, "versions": versions, "expected": expected,
                "url": cold_url}

    # Registry, with the modules published.
    with open(f"{work}/registry.toml", "w") as f:
        f.write(registry_config(work, reg_http, reg_grpc, cold and cold["url"]))
    reg_log = f"{work}/registry.log"
    reg = start(work, "registry", [args.registry, "--config", f"{work}/registry.toml"], reg_log,
                env=server_env({"RUST_LOG": "warn"}))
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
    modules = {t[1]: t[3] for t in targets}
    if args.fanout_mib:
        modules[FANOUT_MODULE] = args.fanout_mib * MIB
    zips = {module: module_zip(module, size) for module, size in modules.items()}
    for module in sorted(modules):
        publish(reg_http, zips[module])
    fanout_path = f"/{FANOUT_MODULE}/@v/{VERSION}.zip"

    # Edge: JSON access log (target strata_edge::access, level info) on stderr, to a file. No
    # OTEL_* variable from the caller: tracing is on only if --edge-env sets it.
    edge_log = f"{work}/edge-access.log"
    edge_env = [("RUST_LOG", "info")] + args.edge_env
    edge, edge_url = start_edge(work, "edge", args.edge, f"{work}/edge.toml", f"{work}/edge-cache",
                                (edge_port, edge_admin), (reg_http, reg_grpc), edge_log,
                                server_env(edge_env), cold=cold is not None)

    # The baseline edge: the same config but its own ports and cache directory; no --edge-env.
    if baseline:
        base_log = f"{work}/edge-baseline-access.log"
        base, base_url = start_edge(work, baseline, args.baseline_edge,
                                    f"{work}/edge-baseline.toml", f"{work}/edge-baseline-cache",
                                    (base_port, base_admin), (reg_http, reg_grpc), base_log,
                                    server_env({"RUST_LOG": "info"}), cold=cold is not None,
                                    server_extra=args.baseline_server)

    # Warm the edge(s); write the very bytes the edge serves where nginx serves them from, and
    # as the GOPROXY tree peers read.
    sizes = {}
    for name, module, ext, _, tier in targets:
        path = f"/{module}/@v/{VERSION}{ext}"
        body = warm(edge_url, path, tier)
        if baseline and warm(base_url, path, tier, baseline) != body:
            die(f"edge and {baseline} serve different bytes for {path}")
        sizes[name] = len(body)
    if args.fanout_mib:
        body = warm(edge_url, fanout_path, "hit-disk")
        if body != zips[FANOUT_MODULE]:
            die(f"the edge serves other bytes than were published for {fanout_path}")
        if baseline and warm(base_url, fanout_path, "hit-disk", baseline) != body:
            die(f"edge and {baseline} serve different bytes for {fanout_path}")
    edge_files = {}
    for module in sorted(modules):
        files = {}
        for ext in ("info", "mod", "zip"):
            path = f"/{module}/@v/{VERSION}.{ext}"
            status, _, body = http("GET", edge_url + path, timeout=120)
            if status != 200:
                die(f"edge answered {status} for {path}: {body[:300].decode(errors='replace')}")
            files[ext] = body
            write_atomic(f"{work}/www{path}", body)
        write_goproxy_version(tree_dir, module, VERSION, files, [VERSION])
        edge_files[module] = files
    chmod_dirs(f"{work}/www")

    with open(f"{work}/nginx.conf", "w") as f:
        f.write(nginx_config(work, nginx_port))
    nginx_log = f"{work}/nginx-stderr.log"
    ngx = start(work, "nginx", [args.nginx, "-c", f"{work}/nginx.conf", "-p", work, "-e",
                                f"{work}/nginx-error.log"], nginx_log)
    nginx_url = f"http://127.0.0.1:{nginx_port}"
    first = targets[0]
    wait_ready("nginx", ngx, f"{nginx_url}/{first[1]}/@v/{VERSION}{first[2]}", nginx_log)
    # The same files from a second nginx without an access log: the machine's static-file limit.
    with open(f"{work}/nginx-nolog.conf", "w") as f:
        f.write(nginx_config(work, nolog_port, name="nginx-nolog", access_log=False))
    nolog_log = f"{work}/nginx-nolog-stderr.log"
    ngx_nolog = start(work, "nginx-nolog", [args.nginx, "-c", f"{work}/nginx-nolog.conf", "-p", work,
                                            "-e", f"{work}/nginx-nolog-error.log"], nolog_log)
    nolog_url = f"http://127.0.0.1:{nolog_port}"
    wait_ready("nginx (no log)", ngx_nolog, f"{nolog_url}/{first[1]}/@v/{VERSION}{first[2]}",
               nolog_log)
    for name, module, ext, _, _ in targets:
        path = f"/{module}/@v/{VERSION}{ext}"
        a = http("GET", edge_url + path)[2]
        b = http("GET", nginx_url + path)[2]
        if a != b:
            die(f"edge and nginx serve different bytes for {path}")

    # `strata up` (what `make run` starts): embedded defaults in a fresh data directory, the same
    # zips published to its local repository `private`, read through `/` (virtual `go`).
    aio = None
    if args.all_in_one:
        empty = f"{work}/empty-goproxy"
        os.makedirs(empty, exist_ok=True)
        _, empty_url = start_fixture(work, "empty upstream", empty, free_port(), 0)
        aio_port, aio_reg = free_port(), free_port()
        aio_log = f"{work}/strata-up.log"
        aio_cmd = [args.all_in_one, "up", "--data", f"{work}/strata-up-data",
                   "--listen", f"127.0.0.1:{aio_port}", "--registry-http", f"127.0.0.1:{aio_reg}",
                   "--upstream", empty_url]
        # Its own log level default (info: the access log on, like the edge's RUST_LOG=info);
        # the admin token from the environment rather than a generated one.
        aio_env = server_env({"STRATA_ADMIN_TOKEN": TOKEN})
        aio_env.pop("RUST_LOG", None)
        aio = start(work, AIO, aio_cmd, aio_log, env=aio_env)
        aio_url = f"http://127.0.0.1:{aio_port}"
        wait_ready(f"{AIO} ({args.all_in_one})", aio, f"{aio_url}/healthz", aio_log)
        for module in sorted(modules):
            publish(aio_reg, zips[module], repo="private", what=AIO)
        for name, module, ext, _, tier in targets:
            warm(aio_url, f"/{module}/@v/{VERSION}{ext}", tier, AIO)
        if args.fanout_mib:
            warm(aio_url, fanout_path, "hit-disk", AIO)
        for module in sorted(modules):
            for ext in ("info", "mod", "zip"):
                path = f"/{module}/@v/{VERSION}.{ext}"
                status, _, body = http("GET", aio_url + path, timeout=120)
                want = edge_files[module][ext]
                if status != 200:
                    die(f"{AIO} answered {status} for {path}: "
                        f"{body[:300].decode(errors='replace')}")
                if ext == "info":
                    if info_version(body)[0] != info_version(want)[0]:
                        die(f"{AIO} and the edge serve different versions for {path}: "
                            f"{body!r} and {want!r}")
                elif body != want:
                    die(f"{AIO} and the edge serve different bytes for {path}")

    # Peers: warmed through the same paths (twice: the first may fill their cache), checked
    # against the edge's bytes.
    peer_notes = {}
    for pname, purl, _ in args.peers:
        notes = []
        for module in sorted(modules):
            for ext in ("info", "mod", "zip"):
                path = f"/{module}/@v/{VERSION}.{ext}"
                want = edge_files[module][ext]
                for _ in range(2):
                    try:
                        status, _, body = http("GET", purl + path, timeout=300)
                    except (urllib.error.URLError, OSError) as e:
                        die(f"peer {pname}: GET {purl}{path} failed: {e}")
                    if status != 200:
                        die(f"peer {pname} answered {status} for {purl}{path}: "
                            f"{body[:300].decode(errors='replace')} (its upstream must be the "
                            f"GOPROXY tree {tree_dir}, e.g. GOPROXY=file://{tree_dir}, with "
                            f"GONOSUMDB=example.com/bench)")
                    if ext == "info" and body != want:
                        (v, t), (wv, wt) = info_version(body), info_version(want)
                        if v != wv:
                            die(f"peer {pname} serves {body!r} for {path}, the edge {want!r}")
                        note = f"{path}: Time {t} (the edge: {wt})"
                        if note not in notes:
                            notes.append(note)
                    elif ext != "info" and body != want:
                        die(f"peer {pname} serves other bytes than the edge for {path} "
                            f"({len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()[:16]}; "
                            f"the edge: {len(want)} bytes, "
                            f"{hashlib.sha256(want).hexdigest()[:16]}): is its upstream the "
                            f"GOPROXY tree {tree_dir} this run wrote?")
        peer_notes[pname] = notes

    # The alternation order: with a baseline, the current edge runs between it and nginx, so both
    # of its comparisons are with a neighbour, before it in one round and after it in the next.
    servers = {
        "edge": (edge_url, lambda: [edge.pid]),
        "nginx": (nginx_url, lambda: process_tree(ngx.pid)),
        "nginx (no log)": (nolog_url, lambda: process_tree(ngx_nolog.pid)),
    }
    if baseline:
        servers = {baseline: (base_url, lambda: [base.pid]), **servers}
    if aio:
        servers[AIO] = (aio_url, lambda: [aio.pid])
    for pname, purl, pid in args.peers:
        servers[pname] = (purl, (lambda p=pid: process_tree(p)) if pid else (lambda: []))
    extras = ([AIO] if aio else []) + [p[0] for p in args.peers]
    cores = os.cpu_count() or 0
    print("binaries:")
    print(f"  edge{' (current)' if baseline else ''}: {describe_binary(os.path.abspath(args.edge))}")
    if baseline:
        same = " (the same file as the current edge)" if os.path.samefile(
            args.baseline_edge, args.edge) else ""
        print(f"  {baseline}: {describe_binary(args.baseline_edge)}{same}")
    print(f"  nginx: {describe_binary(os.path.abspath(args.nginx))}")
    print(f"  registry: {describe_binary(os.path.abspath(args.registry))}")
    if aio:
        print(f"  {AIO}: {describe_binary(args.all_in_one)}")
    for pname, purl, pid in args.peers:
        print(f"  peer {pname}: {purl} "
              + (f"(pid {pid} and its children: CPU and RSS measured)" if pid
                 else "(no pid given: no CPU or RSS figures)"))
    stripped = sorted(k for k in os.environ if k.startswith("OTEL_"))
    print(f"edge env: {' '.join(shlex.quote(f'{k}={v}') for k, v in edge_env)}"
          + (" (baseline: RUST_LOG=info)" if baseline else ""))
    print("  removed from the caller's environment for the registry and the edge"
          f"{'s' if baseline else ''}: "
          + (", ".join(stripped) if stripped else "no OTEL_* variable was set"))
    print(f"edge vs nginx: warm GETs, wrk -t{args.threads} -c{args.connections} "
          f"-d{args.seconds}s --latency, {args.rounds} rounds alternating the servers "
          f"(after a {args.warmup_seconds}s warm-up each)")
    if baseline:
        print(f"  wrk, the two edges and nginx share this machine's {cores} cores (the edge not "
              f"being measured is idle); each edge's tokio runtime and nginx's workers "
              f"(worker_processes auto) get {cores} threads each")
        print("  logging: all on, to files (edges: JSON access log on stderr to a file; nginx: "
              "access_log combined) — production-like; 'nginx (no log)' serves the same files "
              "with access_log off: the static-file limit of this machine")
    else:
        print(f"  wrk, the edge and nginx share this machine's {cores} cores; the edge's tokio "
              f"runtime and nginx's workers (worker_processes auto) get {cores} threads each")
        print("  logging: both on, to files (edge: JSON access log on stderr to a file; nginx: "
              "access_log combined) — production-like; 'nginx (no log)' serves the same files "
              "with access_log off: the static-file limit of this machine")
    print("  zip bytes are random (incompressible); nginx serves the bytes fetched from the edge "
          "(identical, checked) from disk, with sendfile; both keep connections alive "
          "(nginx keepalive_requests raised so it does not close one every 1000 requests)")
    for name, _, _, _, tier in targets:
        where = ("memory tier" if tier == "hit-memory"
                 else "disk tier: above cache.memory_zip_max_bytes, read in chunks")
        print(f"  {name:<10} {sizes[name]:>9} bytes, edge answers from its {where} ({tier})")
    if aio:
        print(f"  {AIO}: `{' '.join(shlex.quote(a) for a in aio_cmd)}`, its default log level "
              f"(info: access log on, to a file): the embedded defaults but --upstream, the "
              f"`gocache` remote's upstream, an empty local GOPROXY (a publish first asks it "
              f"whether the path is public); the same zips published to its repository "
              f"`private`, measured through `/` (virtual repository `go`), warmed to the same "
              f"tiers; .zip and .mod are the edge's bytes (checked), .info has its own publish "
              f"time; its CPU is the one process's (registry, edge and sync worker)")
    print(f"  GOPROXY tree of the published modules (what peers must serve; "
          f"GOPROXY=file://{tree_dir}): {tree_dir}")
    for pname, purl, _ in args.peers:
        print(f"  peer {pname}: every .info, .mod and .zip fetched twice, .mod and .zip "
              f"byte-identical to the edge's (checked)"
              + ("" if not peer_notes[pname] else
                 "; its .info differs from the edge's in Time only: "
                 + "; ".join(peer_notes[pname])))
    sys.stdout.flush()

    # Warm-up, then the measured rounds.
    for name, module, ext, _, _ in targets:
        path = f"/{module}/@v/{VERSION}{ext}"
        for server, (url, pids) in servers.items():
            run_wrk(args, url + path, args.warmup_seconds, pids())
    results = {(t[0], s): [] for t in targets for s in servers}
    order = list(servers)
    width = max(5, *(len(s) for s in servers))
    for r in range(args.rounds):
        for name, module, ext, _, _ in targets:
            path = f"/{module}/@v/{VERSION}{ext}"
            for server in (order if r % 2 == 0 else order[::-1]):
                url, pids = servers[server]
                res = run_wrk(args, url + path, args.seconds, pids())
                results[(name, server)].append(res)
                print(f"  round {r + 1} {name:<10} {server:<{width}} {res['rps']:>10.0f} req/s  "
                      f"p99 {res['p99'] * 1000:7.2f} ms", file=sys.stderr)
                if res["socket_errors"]:
                    print(f"  ({server} {name}: {res['socket_errors']})", file=sys.stderr)

    def ratios_of(name, med, a, b):
        x, y = med[a], med[b]
        # Each round measured the servers back to back: the ratio within a round is immune to
        # load that drifts between rounds (other work on the machine).
        paired = statistics.median(
            p["rps"] / q["rps"] for p, q in zip(results[(name, a)], results[(name, b)])
        )
        cpu = x["cpu"] / y["cpu"] if x["cpu"] is not None and y["cpu"] else None
        return (name, x["rps"] / y["rps"], paired, x["p99"] / y["p99"], cpu)

    def ratio_rows(rows):
        for name, rps, paired, p99, cpu in rows:
            cpu_text = "-" if cpu is None else f"{cpu:.2f}"
            print(f"{name:<10} {rps:>8.2f} {paired:>8.2f} {p99:>8.2f} {cpu_text:>8}")

    print()
    col = max(6, *(len(s) for s in servers))
    print(f"{'target':<10} {'server':<{col}} {'req/s':>10} {'p99 ms':>8} {'MiB/s':>9} "
          f"{'CPU us/req':>10}   (medians of {args.rounds})")
    ratios = []
    nolog_ratios = []
    base_ratios = []
    extra_ratios = {x: [] for x in extras}
    for name, *_ in targets:
        med = {}
        for server in servers:
            runs = results[(name, server)]
            m = {
                "rps": statistics.median(x["rps"] for x in runs),
                "p99": statistics.median(x["p99"] for x in runs),
                "bps": statistics.median(x["bps"] for x in runs),
                "cpu": None if any(x["cpu"] is None for x in runs) else
                statistics.median(x["cpu"] / max(x["requests"], 1) for x in runs),
            }
            med[server] = m
            cpu_text = "-" if m["cpu"] is None else f"{m['cpu'] * 1e6:.1f}"
            print(f"{name:<10} {server:<{col}} {m['rps']:>10.0f} {m['p99'] * 1000:>8.2f} "
                  f"{m['bps'] / MIB:>9.1f} {cpu_text:>10}")
        ratios.append(ratios_of(name, med, "edge", "nginx"))
        nolog_ratios.append(ratios_of(name, med, "edge", "nginx (no log)"))
        if baseline:
            base_ratios.append(ratios_of(name, med, "edge", baseline))
        for x in extras:
            extra_ratios[x].append(ratios_of(name, med, "edge", x))
    print()
    print(f"{'edge/nginx':<10} {'req/s':>8} {'paired':>8} {'p99':>8} {'CPU/req':>8}   "
          f"(ratios of the medians; paired = median of the per-round req/s ratios; "
          f"aim: req/s >= 0.8)")
    ratio_rows(ratios)
    print()
    print(f"{'edge/nginx, no log':<18} (the edge with its access log against nginx without one: "
          f"the limit of this machine)")
    ratio_rows(nolog_ratios)
    if baseline:
        print()
        print(f"{'edge/base':<10} {'req/s':>8} {'paired':>8} {'p99':>8} {'CPU/req':>8}   "
              f"(current/baseline, same ratios; 1.00 = no change: higher req/s and lower p99 "
              f"and CPU/req are better)")
        ratio_rows(base_ratios)
    peer_pids = {p[0]: p[2] for p in args.peers}
    for x in extras:
        print()
        what = ("the separate edge against the all-in-one process, same ratios" if x == AIO
                else f"the edge against peer {x}, same ratios"
                + ("" if peer_pids[x] else "; no CPU figure without @PID"))
        print(f"{'edge/' + x:<10} {'req/s':>8} {'paired':>8} {'p99':>8} {'CPU/req':>8}   ({what})")
        ratio_rows(extra_ratios[x])
    edge_mem = memory_kib(edge.pid)
    ngx_rss = sum(memory_kib(p).get("VmRSS", 0) for p in process_tree(ngx.pid))
    print()
    print(f"edge RSS after the run: VmRSS {edge_mem.get('VmRSS', 0) / 1024:.1f} MiB, "
          f"VmHWM (peak) {edge_mem.get('VmHWM', 0) / 1024:.1f} MiB "
          f"(nginx master + workers VmRSS: {ngx_rss / 1024:.1f} MiB)")
    if baseline:
        base_mem = memory_kib(base.pid)
        print(f"{baseline} RSS after the run: VmRSS {base_mem.get('VmRSS', 0) / 1024:.1f} MiB, "
              f"VmHWM (peak) {base_mem.get('VmHWM', 0) / 1024:.1f} MiB")
    if aio:
        aio_mem = memory_kib(aio.pid)
        print(f"{AIO} RSS after the run: VmRSS {aio_mem.get('VmRSS', 0) / 1024:.1f} MiB, "
              f"VmHWM (peak) {aio_mem.get('VmHWM', 0) / 1024:.1f} MiB (registry, edge and sync "
              f"worker in one process)")
    for pname, _, pid in args.peers:
        if pid:
            pids = process_tree(pid)
            print(f"peer {pname} RSS after the run: VmRSS {rss_kib(pids, 'VmRSS') / 1024:.1f} MiB, "
                  f"VmHWM (peak) {rss_kib(pids, 'VmHWM') / 1024:.1f} MiB "
                  f"(pid {pid} and children, {len(pids)} processes)")
    with open(edge_log, "rb") as f:
        edge_lines = sum(1 for _ in f)
    with open(f"{work}/nginx-access.log", "rb") as f:
        nginx_lines = sum(1 for _ in f)
    aio_lines = ""
    if aio:
        with open(aio_log, "rb") as f:
            aio_lines = f", {AIO} {sum(1 for line in f if ACCESS_TARGET in line)}"
    if baseline:
        with open(base_log, "rb") as f:
            base_lines = sum(1 for _ in f)
        print(f"access log lines written: edge {edge_lines}, {baseline} {base_lines}, "
              f"nginx {nginx_lines}{aio_lines}")
    else:
        print(f"access log lines written: edge {edge_lines}, nginx {nginx_lines}{aio_lines}")
    sys.stdout.flush()

    if args.fanout_mib:
        fanout(args, servers, [s for s in servers if s != "nginx"],
               len(edge_files[FANOUT_MODULE]["zip"]), fanout_path, work)
    if cold:
        cold_fill(args, servers, cold)


def fanout(args, servers, names, size, path, work):
    """N concurrent full downloads of one large zip per server, N in --fanout-clients."""
    times = {(n, s): [] for n in args.fanout_clients for s in names}
    growth = {(n, s): [] for n in args.fanout_clients for s in names}
    width = max(5, *(len(s) for s in names))
    for r in range(args.rounds):
        for n in args.fanout_clients:
            for server in (names if r % 2 == 0 else names[::-1]):
                url, pids_of = servers[server]
                pids = pids_of()
                before = rss_kib(pids, "VmRSS")
                reset = reset_peak(pids)
                elapsed = fanout_once(url + path, n, size, f"{work}/fanout-curl.out",
                                      f"{work}/fanout-curl.err")
                grew = rss_kib(pids, "VmHWM") - before if reset else None
                times[(n, server)].append(elapsed)
                growth[(n, server)].append(grew)
                print(f"  round {r + 1} fan-out {n:>4} x {args.fanout_mib} MiB {server:<{width}} "
                      f"{elapsed:8.3f} s"
                      + ("" if grew is None else f"  RSS +{grew / 1024:.1f} MiB"),
                      file=sys.stderr)
    print()
    print(f"fan-out: N `curl -sS -o /dev/null` processes started together, each one full GET "
          f"of the same {size} byte zip (random bytes; the edges serve it from their disk tier), "
          f"{args.rounds} rounds alternating the servers; time = from starting the first curl "
          f"to the last one's exit (median); RSS growth = the server's peak RSS during the "
          f"fan-out (VmHWM, reset through /proc/PID/clear_refs) minus its VmRSS before (nginx: "
          f"master + workers), the largest of the rounds; every answer checked: 200, {size} "
          f"bytes")
    col = max(6, *(len(s) for s in names))
    print(f"{'clients':>7} {'server':<{col}} {'time s':>9} {'MiB/s':>9} {'RSS growth MiB':>15}")
    med = {}
    for n in args.fanout_clients:
        for server in names:
            t = statistics.median(times[(n, server)])
            med[(n, server)] = t
            g = growth[(n, server)]
            g_text = "-" if any(x is None for x in g) else f"{max(g) / 1024:.1f}"
            print(f"{n:>7} {server:<{col}} {t:>9.3f} {n * size / MIB / t:>9.0f} {g_text:>15}")
    others = [s for s in names if s != "edge"]
    print()
    print(f"{'edge/X time':<11} " + " ".join(f"{s:>{max(8, len(s))}}" for s in others)
          + "   (ratio of the median times; < 1: the edge finished sooner)")
    for n in args.fanout_clients:
        print(f"{f'{n} clients':<11} " + " ".join(
            f"{med[(n, 'edge')] / med[(n, s)]:>{max(8, len(s))}.2f}" for s in others))


def cold_fill(args, servers, cold):
    """One never-fetched zip per round and edge through the edge, and straight from the fixture."""
    names = cold["servers"]
    res = {s: [] for s in names + ["upstream"]}
    cache_answers = {s: set() for s in names}
    versions = iter(cold["versions"])
    width = max(8, *(len(s) for s in names))
    for r in range(args.rounds):
        for server in (names if r % 2 == 0 else names[::-1]):
            v = next(versions)
            path = f"/{COLD_MODULE}/@v/{v}.zip"
            size, digest = cold["expected"][v]
            steps = [(server, f"{servers[server][0]}/{COLD_REPO}{path}"),
                     ("upstream", cold["url"] + path)]
            for who, url in (steps if r % 2 == 0 else steps[::-1]):
                status, headers, ttfb, total, n, got = timed_get(url)
                if status != 200 or n != size or got != digest:
                    die(f"cold fill: GET {url} answered {status} with {n} bytes (want 200 with "
                        f"the fixture's {size} bytes, sha256 {digest[:16]}, got {got[:16]})")
                if who != "upstream":
                    cache = headers.get("x-strata-cache", "-")
                    if cache.startswith("hit"):
                        die(f"cold fill: {who} answered {url} from its cache ({cache}): not cold")
                    cache_answers[who].add(cache)
                res[who].append((ttfb, total))
                print(f"  round {r + 1} cold {v} {who:<{width}} TTFB {ttfb * 1000:8.1f} ms  "
                      f"total {total * 1000:8.1f} ms", file=sys.stderr)
    size = next(iter(cold["expected"].values()))[0]
    vs = cold["versions"]
    print()
    print(f"cold fill: one GET (new connection) of a {size} byte zip (random bytes) nobody "
          f"fetched before, through the edge, its registry's remote repository \"{COLD_REPO}\" "
          f"(option no_sum = [\"{COLD_MODULE}\"]: fetched without checksum-database "
          f"verification, the fixture being in none) and bench/goproxy_fixture.py throttled to "
          f"{args.cold_mbps:g} Mbit/s per connection; a new version each time "
          f"({vs[0]}{'' if len(vs) == 1 else f' to {vs[-1]}'}); 'upstream' = the same GET straight from the fixture (the floor); medians "
          f"of {args.rounds}")
    print(f"{'path':<{width}} {'TTFB ms':>9} {'total ms':>9} {'MiB/s':>7}   X-Strata-Cache")
    med = {}
    for who in names + ["upstream"]:
        ttfb = statistics.median(x[0] for x in res[who])
        total = statistics.median(x[1] for x in res[who])
        med[who] = (ttfb, total)
        seen = ", ".join(sorted(cache_answers.get(who, ()))) or "-"
        print(f"{who:<{width}} {ttfb * 1000:>9.1f} {total * 1000:>9.1f} "
              f"{size / MIB / total:>7.1f}   {seen}")
    for who in names:
        print(f"{who + '/upstream':<{width}} TTFB {med[who][0] / med['upstream'][0]:.2f}, "
              f"total {med[who][1] / med['upstream'][1]:.2f}")


if __name__ == "__main__":
    main()
