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
--edge-env KEY=VALUE (repeatable) sets a variable for the current edge only, e.g.
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 to measure the cost of tracing. Every OTEL_*
variable of the caller's environment is removed from the registry's and both edges' environments,
so tracing is off unless --edge-env turns it on.

Usage: edge_vs_nginx.py --registry BIN --edge BIN --nginx BIN --workdir DIR
                        [--seconds 10] [--rounds 3] [--connections 64] [--threads 2]
                        [--disk-zip-mib 4] [--targets info,zip,disk-zip]
                        [--baseline-edge BIN] [--edge-env KEY=VALUE ...]
Defaults come from BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS, BENCH_THREADS,
BENCH_DISK_ZIP_MIB, BENCH_TARGETS, BENCH_BASELINE_EDGE and BENCH_EDGE_ENV (KEY=VALUE pairs separated
by spaces, shell quoting allowed; ignored if any --edge-env is given). Stdlib only. Reports numbers;
never fails on a threshold (it does fail if a server answers anything but 200, since such numbers
would mean nothing).
"""
import argparse
import hashlib
import io
import json
import os
import random
import re
import shlex
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
    try:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
    except OSError as e:
        die(f"could not start {name} ({cmd[0]}): {e}")
    finally:
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


def wait_ready(name, proc, url, log_path, timeout=60, exit_fatal=True):
    """Waits for `url` to answer 200. If the process exits first: dies, or with
    exit_fatal=False returns False."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if not exit_fatal:
                return False
            die(f"{name} exited with status {proc.returncode} while starting:\n{tail(log_path)}")
        try:
            status, _, _ = http("GET", url, timeout=2)
            if status == 200:
                return True
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


def edge_config(cache_dir, port, admin_port, reg_http, reg_grpc):
    # admin_listen (/metrics, /readyz) on a free port rather than the default 127.0.0.1:9181,
    # which two edges cannot share (nor an edge and anything else using it); None leaves the line
    # out, for edges older than that setting.
    admin = "" if admin_port is None else f'admin_listen = "127.0.0.1:{admin_port}"\n'
    return f"""\
events = {{ kind = "none" }}

[server]
listen = "127.0.0.1:{port}"
{admin}
[[routes]]
prefix = "/"
repository = "{REPO}"

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


def start_edge(work, name, binary, conf_path, cache_dir, ports, registry_ports, log_path, env):
    """Writes an edge's config, starts it and waits for /healthz; returns (Popen, url)."""
    port, admin_port = ports
    with open(conf_path, "w") as f:
        f.write(edge_config(cache_dir, port, admin_port, *registry_ports))
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
        f.write(edge_config(cache_dir, port, None, *registry_ports))
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
    ap.add_argument("--baseline-edge", default=os.environ.get("BENCH_BASELINE_EDGE") or None,
                    metavar="BIN",
                    help="also measure an edge started from BIN, side by side with --edge")
    ap.add_argument("--edge-env", action="append", metavar="KEY=VALUE",
                    help="a variable for the current edge only (repeatable; default: the "
                         "space-separated pairs of BENCH_EDGE_ENV)")
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
    binaries = [("--registry", args.registry), ("--edge", args.edge), ("--nginx", args.nginx)]
    if args.baseline_edge:
        binaries.append(("--baseline-edge", args.baseline_edge))
    for flag, path in binaries:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            die(f"{flag} {path}: not an executable file")
    if args.baseline_edge:
        args.baseline_edge = os.path.abspath(args.baseline_edge)
        if os.path.samefile(args.baseline_edge, args.edge):
            print(f"bench-edge: warning: --baseline-edge is the same file as --edge ({args.edge}): "
                  f"this measures the edge against itself", file=sys.stderr)

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
    for d in ("registry-data", "spool", "edge-cache", "www", "nginx-tmp", "nginx-nolog-tmp"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    baseline = "edge (baseline)" if args.baseline_edge else None
    if baseline:
        os.makedirs(os.path.join(work, "edge-baseline-cache"), exist_ok=True)

    reg_http, reg_grpc, edge_port, edge_admin, nginx_port, base_port, base_admin, nolog_port = (
        free_port() for _ in range(8))

    # Registry, with the modules published.
    with open(f"{work}/registry.toml", "w") as f:
        f.write(registry_config(work, reg_http, reg_grpc))
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
    for module, size in sorted({(t[1], t[3]) for t in targets}):
        publish(reg_http, module_zip(module, size))

    # Edge: JSON access log (target strata_edge::access, level info) on stderr, to a file. No
    # OTEL_* variable from the caller: tracing is on only if --edge-env sets it.
    edge_log = f"{work}/edge-access.log"
    edge_env = [("RUST_LOG", "info")] + args.edge_env
    edge, edge_url = start_edge(work, "edge", args.edge, f"{work}/edge.toml", f"{work}/edge-cache",
                                (edge_port, edge_admin), (reg_http, reg_grpc), edge_log,
                                server_env(edge_env))

    # The baseline edge: the same config but its own ports and cache directory; no --edge-env.
    if baseline:
        base_log = f"{work}/edge-baseline-access.log"
        base, base_url = start_edge(work, baseline, args.baseline_edge,
                                    f"{work}/edge-baseline.toml", f"{work}/edge-baseline-cache",
                                    (base_port, base_admin), (reg_http, reg_grpc), base_log,
                                    server_env({"RUST_LOG": "info"}))

    # Warm the edge; write the very bytes it serves where nginx serves them from.
    sizes = {}
    for name, module, ext, _, tier in targets:
        path = f"/{module}/@v/{VERSION}{ext}"
        body = warm(edge_url, path, tier)
        if baseline and warm(base_url, path, tier, baseline) != body:
            die(f"edge and {baseline} serve different bytes for {path}")
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

    # The alternation order: with a baseline, the current edge runs between it and nginx, so both
    # of its comparisons are with a neighbour, before it in one round and after it in the next.
    servers = {
        "edge": (edge_url, lambda: [edge.pid]),
        "nginx": (nginx_url, lambda: process_tree(ngx.pid)),
        "nginx (no log)": (nolog_url, lambda: process_tree(ngx_nolog.pid)),
    }
    if baseline:
        servers = {baseline: (base_url, lambda: [base.pid]), **servers}
    cores = os.cpu_count() or 0
    print("binaries:")
    print(f"  edge{' (current)' if baseline else ''}: {describe_binary(os.path.abspath(args.edge))}")
    if baseline:
        same = " (the same file as the current edge)" if os.path.samefile(
            args.baseline_edge, args.edge) else ""
        print(f"  {baseline}: {describe_binary(args.baseline_edge)}{same}")
    print(f"  nginx: {describe_binary(os.path.abspath(args.nginx))}")
    print(f"  registry: {describe_binary(os.path.abspath(args.registry))}")
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
        return (name, x["rps"] / y["rps"], paired, x["p99"] / y["p99"],
                x["cpu"] / y["cpu"] if y["cpu"] else 0)

    print()
    col = max(6, *(len(s) for s in servers))
    print(f"{'target':<10} {'server':<{col}} {'req/s':>10} {'p99 ms':>8} {'MiB/s':>9} "
          f"{'CPU us/req':>10}   (medians of {args.rounds})")
    ratios = []
    nolog_ratios = []
    base_ratios = []
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
            print(f"{name:<10} {server:<{col}} {m['rps']:>10.0f} {m['p99'] * 1000:>8.2f} "
                  f"{m['bps'] / MIB:>9.1f} {m['cpu'] * 1e6:>10.1f}")
        ratios.append(ratios_of(name, med, "edge", "nginx"))
        nolog_ratios.append(ratios_of(name, med, "edge", "nginx (no log)"))
        if baseline:
            base_ratios.append(ratios_of(name, med, "edge", baseline))
    print()
    print(f"{'edge/nginx':<10} {'req/s':>8} {'paired':>8} {'p99':>8} {'CPU/req':>8}   "
          f"(ratios of the medians; paired = median of the per-round req/s ratios; "
          f"aim: req/s >= 0.8)")
    for name, rps, paired, p99, cpu in ratios:
        print(f"{name:<10} {rps:>8.2f} {paired:>8.2f} {p99:>8.2f} {cpu:>8.2f}")
    print()
    print(f"{'edge/nginx, no log':<18} (the edge with its access log against nginx without one: "
          f"the limit of this machine)")
    for name, rps, paired, p99, cpu in nolog_ratios:
        print(f"{name:<10} {rps:>8.2f} {paired:>8.2f} {p99:>8.2f} {cpu:>8.2f}")
    if baseline:
        print()
        print(f"{'edge/base':<10} {'req/s':>8} {'paired':>8} {'p99':>8} {'CPU/req':>8}   "
              f"(current/baseline, same ratios; 1.00 = no change: higher req/s and lower p99 "
              f"and CPU/req are better)")
        for name, rps, paired, p99, cpu in base_ratios:
            print(f"{name:<10} {rps:>8.2f} {paired:>8.2f} {p99:>8.2f} {cpu:>8.2f}")
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
    with open(edge_log, "rb") as f:
        edge_lines = sum(1 for _ in f)
    with open(f"{work}/nginx-access.log", "rb") as f:
        nginx_lines = sum(1 for _ in f)
    if baseline:
        with open(base_log, "rb") as f:
            base_lines = sum(1 for _ in f)
        print(f"access log lines written: edge {edge_lines}, {baseline} {base_lines}, "
              f"nginx {nginx_lines}")
    else:
        print(f"access log lines written: edge {edge_lines}, nginx {nginx_lines}")


if __name__ == "__main__":
    main()
