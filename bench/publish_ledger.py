#!/usr/bin/env python3
"""Benchmark: the cost of the registry's checksum database ([ledger], issue 16) on publishing.

Starts two registries from the same binary, side by side in WORKDIR, with identical
configurations (same storage kind, in-process events, a local repository `bench` with a deploy
token) except that one has a `[ledger]` table (a signer key made by `strata sumdb keygen`, in a
0600 file). Storage (--storage):

- fs (the default): each registry its own directory under WORKDIR;
- s3: one MinIO (scripts/s3-server.sh start WORKDIR/minio, data under WORKDIR/minio, which the
  script starts itself and stops however the run ends), each registry its own bucket
  (`strata-bench-off`, `strata-bench-on`) through `storage = { kind = "s3", bucket, endpoint,
  region, path_style = true }`, credentials from the environment (AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY as s3-server.sh prints them). The ledger lives in the object store, so
  this is what it costs on production storage (here a local MinIO on the same disk: no network
  round trips beyond loopback). Then publishes distinct module versions to each through the HTTP publish API
(`PUT /api/repos/bench/upload`, one standard module zip per request, as README "Publishing"
describes) and compares:

- rows: small zips (--small-kib, default 4 KiB; --count versions, default 200) and large zips
  (--large-kib, default 1024 = 1 MiB; --large-count versions, default 100);
- modes: sequential (one client, one keep-alive connection) and concurrent (--concurrency
  clients, default 8, each with its own keep-alive connection, taking the next zip from a shared
  queue);
- every (row, mode) is split into --rounds rounds (default 4); each round publishes its share to
  one registry and then the same number of *other* versions to the other, alternating which goes
  first, so both see the same machine conditions. Every zip is a distinct module
  (`example.com/bench/publish/<row>/<mode>/r<round>/m<i>` at v1.0.0, so publishes never contend
  for one module's version index) and the two registries receive the same bytes.

Per registry and (row, mode) it prints the median and p90 publish latency (request sent to
response read), the total time (sum of the rounds' wall times) and publishes/s, and the on/off
ratios. At the end it checks that every publish was a 201, that the ledger registry's
`/go/bench/sumdb/<name>/latest` is a tree head signed by the verifier key's key id (the
Ed25519 signature itself is left to the go command and the registry's tests) whose size equals the number of publishes it received, that one lookup answers
the go.sum lines its publish answered, and that the registry without the ledger has no such
route; otherwise the numbers would mean nothing and it fails.

Usage: publish_ledger.py --registry BIN --strata BIN --workdir DIR
                         [--count 200] [--large-count 100] [--small-kib 4] [--large-kib 1024]
                         [--concurrency 8] [--rounds 4] [--modes sequential,concurrent]
                         [--storage fs|s3]
Defaults come from BENCH_PUBLISH_COUNT, BENCH_PUBLISH_LARGE_COUNT (0 leaves the large row out),
BENCH_PUBLISH_SMALL_KIB, BENCH_PUBLISH_LARGE_KIB, BENCH_PUBLISH_CONCURRENCY, BENCH_ROUNDS,
BENCH_PUBLISH_MODES and BENCH_PUBLISH_STORAGE (fs). Stdlib only. Reports numbers; never fails on a threshold (the issue's target,
on/off <= 1.10 in total time, is printed next to each ratio).
"""
import argparse
import base64
import hashlib
import http.client as http_client
import io
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import zipfile

import bench_support
from bench_support import die, env_int, free_port, http, start, wait_ready

bench_support.NAME = "bench-publish"

REPO = "bench"
TOKEN = "strata_bench-publish-token-not-secret"
VERSION = "v1.0.0"
LEDGER_NAME = "sum.bench.strata.test"
KIB = 1 << 10
TARGET_RATIO = 1.10
OFF, ON = "ledger off", "ledger on"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S3_SERVER = os.path.join(ROOT, "scripts", "s3-server.sh")
BUCKETS = {OFF: "strata-bench-off", ON: "strata-bench-on"}

def module_zip(module, size, seed):
    """A module zip of exactly `size` bytes: a go.mod, a small Go file and one file of random
    (incompressible) bytes, stored, every path under `module@v1.0.0/`."""
    prefix = f"{module}@{VERSION}/"
    gomod = f"module {module}\n\ngo 1.22\n".encode()
    pkg = module.rsplit("/", 1)[-1]
    source = f"package {pkg}\n\n// Seed is this version's seed.\nconst Seed = {seed!r}\n".encode()
    blob = random.Random(seed).randbytes(size)

    def build(blob_len):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for name, data in ((prefix + "go.mod", gomod), (prefix + f"{pkg}.go", source),
                               (prefix + "testdata/blob.bin", blob[:blob_len])):
                info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED
                z.writestr(info, data)
        return buf.getvalue()

    overhead = len(build(0))
    if overhead >= size:
        die(f"a zip of {size} bytes is too small")
    data = build(size - overhead)
    if len(data) != size:
        die(f"built a zip of {len(data)} bytes, wanted {size}")
    return data


def registry_config(workdir, name, http_port, grpc_port, ledger_key=None, s3=None):
    """The registry's TOML. `s3`: None for fs storage under WORKDIR, else (endpoint, region,
    bucket); credentials come from the environment (the AWS default chain)."""
    token_sha = hashlib.sha256(TOKEN.encode()).hexdigest()
    ledger = "" if ledger_key is None else f"""
[ledger]
name = "{LEDGER_NAME}"
key_file = "{ledger_key}"
"""
    if s3 is None:
        storage = f'{{ kind = "fs", root = "{workdir}/{name}-data" }}'
    else:
        endpoint, region, bucket = s3
        storage = (f'{{ kind = "s3", bucket = "{bucket}", endpoint = "{endpoint}", '
                   f'region = "{region}", path_style = true }}')
    return f"""\
storage = {storage}
events = {{ kind = "memory" }}

[server]
http = "127.0.0.1:{http_port}"
grpc = "127.0.0.1:{grpc_port}"
spool_dir = "{workdir}/{name}-spool"

[[repositories]]
name = "{REPO}"
kind = "local"
anonymous_read = true

[[tokens]]
name = "bench"
sha256 = "{token_sha}"
permissions = {{ {REPO} = ["read", "deploy"] }}
{ledger}"""


class ScriptServer:
    """A server that scripts/s3-server.sh starts detached (it records the pid in DIR/pid) and
    stops, with the interface bench_support.stop_all uses of a Popen, so that it joins
    bench_support.processes and is stopped with the rest, however the run ends, after the
    registries started later."""

    def __init__(self, script, directory):
        self.script = script
        self.dir = directory
        self.returncode = None

    def pid(self):
        try:
            with open(os.path.join(self.dir, "pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def poll(self):
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, 0)
                return None
            except OSError:
                pass
        self.returncode = 0
        return 0

    def terminate(self):
        # `stop` sends SIGTERM, waits up to 10 s, then SIGKILL, and removes DIR/pid.
        subprocess.run([self.script, "stop", self.dir], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                       check=False)

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout or 0)
        while self.poll() is None:
            if timeout is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.script, timeout)
            time.sleep(0.1)
        return self.returncode

    def kill(self):
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def start_minio(work, env):
    """Starts one MinIO with a bucket per registry through scripts/s3-server.sh; its
    (endpoint, region) and the variables it prints (credentials) are added to `env`."""
    directory = f"{work}/minio"
    server = ScriptServer(S3_SERVER, directory)
    # Registered before it starts: a SIGTERM (or a failure) during start-up stops it too.
    bench_support.processes.append(("minio", server))
    t0 = time.perf_counter()
    out = subprocess.run([S3_SERVER, "start", directory, BUCKETS[OFF], BUCKETS[ON]],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                         check=False)
    pid = server.pid()
    if pid is not None:
        # For the shell wrapper's trap, should this driver be killed before it stops MinIO.
        bench_support.record_pid(work, pid)
    if out.returncode != 0:
        die(f"scripts/s3-server.sh start failed ({out.returncode}); log: "
            f"{directory}/server.log\n{bench_support.tail(directory + '/server.log')}")
    exported = {}
    for line in out.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            exported[key] = value
    for key in ("STRATA_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if not exported.get(key):
            die(f"scripts/s3-server.sh start printed no {key}:\n{out.stdout}")
    # The default credential chain reads these first; a session token of the caller's own AWS
    # credentials would be sent along with MinIO's key and refused.
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    env.update(exported)
    env.setdefault("AWS_REGION", "us-east-1")
    print(f"bench-publish: minio (pid {pid}) at {exported['STRATA_S3_ENDPOINT']} ready in "
          f"{time.perf_counter() - t0:.1f} s, buckets {BUCKETS[OFF]}, {BUCKETS[ON]}",
          file=sys.stderr)
    return exported["STRATA_S3_ENDPOINT"], env["AWS_REGION"]


class Publisher:
    """One client: a keep-alive HTTP/1.1 connection to a registry's publish API."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def publish(self, data):
        """Publishes one zip; (seconds, status, body). Reconnects once if the kept-alive
        connection was closed by the server between requests."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http_client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            t0 = time.perf_counter()
            try:
                self.conn.request("PUT", f"/api/repos/{REPO}/upload", body=data, headers={
                    "Authorization": f"Bearer {TOKEN}",
                    "Content-Type": "application/zip",
                })
                r = self.conn.getresponse()
                body = r.read()
            except (ConnectionError, http_client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
                continue
            elapsed = time.perf_counter() - t0
            if r.getheader("connection", "").lower() == "close":
                self.close()
            return elapsed, r.status, body
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_batch(port, zips, concurrency):
    """Publishes `zips` [(module, data)] with `concurrency` clients; (wall seconds, latencies,
    {module: answered go.sum lines}). Dies on any status but 201."""
    work = queue.Queue()
    for item in zips:
        work.put(item)
    latencies = []
    answers = {}
    failures = []
    lock = threading.Lock()

    def worker():
        client = Publisher(port)
        try:
            while not failures:
                try:
                    module, data = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    elapsed, status, body = client.publish(data)
                except Exception as e:  # noqa: BLE001 - reported below
                    with lock:
                        failures.append(f"{module}: {e!r}")
                    return
                with lock:
                    if status != 201:
                        failures.append(f"{module}: {status} {body.decode(errors='replace')}")
                        return
                    latencies.append(elapsed)
                    answers[module] = body.decode()
        finally:
            client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        die(f"publishing failed: {failures[0]}")
    return wall, latencies, answers


def verify_note(note_text, verifier):
    """The text of a signed note (the go command's note format) that carries a signature line of
    the verifier key `<name>+<hash>+<base64 key>`: the line names the key and its key id is the
    verifier's. Stdlib has no Ed25519, so the signature itself is left to the go command and
    the registry's own tests."""
    name, key_hash, _ = verifier.split("+", 2)
    text, sep, sigs = note_text.partition("\n\n")
    if not sep:
        die(f"/latest is not a signed note:\n{note_text}")
    for line in sigs.splitlines():
        if line.startswith(f"— {name} "):
            raw = base64.b64decode(line.split(" ", 2)[2])
            if raw[:4].hex() == key_hash:
                return text + "\n"
    die(f"/latest carries no signature of {name}+{key_hash}:\n{note_text}")


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def fmt_ms(seconds):
    return f"{seconds * 1000:.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", required=True)
    ap.add_argument("--strata", required=True, help="the strata CLI (for `strata sumdb keygen`)")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--count", type=int, default=env_int("BENCH_PUBLISH_COUNT", 200),
                    help="small versions published per registry and mode")
    ap.add_argument("--large-count", type=int,
                    default=env_int("BENCH_PUBLISH_LARGE_COUNT", 100),
                    help="large versions published per registry and mode (0: no large row)")
    ap.add_argument("--small-kib", type=int, default=env_int("BENCH_PUBLISH_SMALL_KIB", 4))
    ap.add_argument("--large-kib", type=int, default=env_int("BENCH_PUBLISH_LARGE_KIB", 1024))
    ap.add_argument("--concurrency", type=int, default=env_int("BENCH_PUBLISH_CONCURRENCY", 8))
    ap.add_argument("--rounds", type=int, default=env_int("BENCH_ROUNDS", 4))
    ap.add_argument("--modes", default=os.environ.get("BENCH_PUBLISH_MODES",
                                                       "sequential,concurrent"),
                    help="comma-separated subset of sequential, concurrent")
    ap.add_argument("--storage", choices=("fs", "s3"),
                    default=os.environ.get("BENCH_PUBLISH_STORAGE") or "fs",
                    help="the registries' storage: fs (a directory each) or s3 (a bucket each "
                         "in one MinIO that this script starts)")
    args = ap.parse_args()
    if args.count < 1 or args.large_count < 0 or args.rounds < 1 or args.concurrency < 1:
        die("--count, --rounds and --concurrency must be at least 1, --large-count at least 0")
    if args.small_kib < 1 or args.large_kib < 1:
        die("--small-kib and --large-kib must be at least 1")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"sequential", "concurrent"}:
        die(f"--modes: expected a subset of sequential, concurrent, got {args.modes!r}")
    args.modes = modes
    for flag, path in (("--registry", args.registry), ("--strata", args.strata)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            die(f"{flag} {path}: not an executable file")
    if args.storage not in ("fs", "s3"):  # BENCH_PUBLISH_STORAGE bypasses argparse's choices
        die(f"--storage / BENCH_PUBLISH_STORAGE: expected fs or s3, got {args.storage!r}")

    bench_support.run_then_stop_all(run, args)


def run(args):
    work = os.path.abspath(args.workdir)
    os.makedirs(work, exist_ok=True)

    # The ledger's signer key, as README "Corporate checksum database" makes it.
    key_path = f"{work}/ledger.key"
    keygen = subprocess.run([args.strata, "sumdb", "keygen", LEDGER_NAME, "--out", key_path],
                            capture_output=True, text=True)
    if keygen.returncode != 0:
        die(f"strata sumdb keygen failed ({keygen.returncode}): {keygen.stderr}")
    verifier = keygen.stdout.strip()

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["RUST_LOG"] = "warn"
    s3 = None
    if args.storage == "s3":
        s3 = start_minio(work, env)
        storage_label = f"s3 storage (MinIO at {s3[0]}, a bucket per registry)"
    else:
        storage_label = "fs storage"
    ports = {}
    for name, key in ((OFF, None), (ON, key_path)):
        slug = "on" if key else "off"
        http_port, grpc_port = free_port(), free_port()
        for d in ([f"{slug}-spool"] if s3 else [f"{slug}-data", f"{slug}-spool"]):
            os.makedirs(f"{work}/{d}", exist_ok=True)
        conf = f"{work}/registry-{slug}.toml"
        with open(conf, "w") as f:
            f.write(registry_config(work, slug, http_port, grpc_port, key,
                                    None if s3 is None else (*s3, BUCKETS[name])))
        log = f"{work}/registry-{slug}.log"
        proc = start(work, f"registry ({name})", [args.registry, "--config", conf], log, env=env)
        wait_ready(f"registry ({name})", proc, f"http://127.0.0.1:{http_port}/healthz", log)
        ports[name] = http_port

    rows = [("small", args.small_kib * KIB, args.count)]
    if args.large_count:
        rows.append(("large", args.large_kib * KIB, args.large_count))
    size_label = {"small": f"{args.small_kib} KiB", "large": f"{args.large_kib} KiB"}
    if args.large_kib % 1024 == 0:
        size_label["large"] = f"{args.large_kib // 1024} MiB"
    concurrency = {"sequential": 1, "concurrent": args.concurrency}
    mode_label = {"sequential": "sequential", "concurrent": f"concurrency {args.concurrency}"}

    print(f"bench-publish: registry {args.registry}, {storage_label}", file=sys.stderr)
    print(f"bench-publish: ledger {LEDGER_NAME}, verifier key {verifier}", file=sys.stderr)
    results = {}  # (row, mode, server) -> {"wall": s, "lat": [s]}
    published = {OFF: 0, ON: 0}
    sample = None  # (module, go.sum lines the ledger registry answered)
    for row, size, count in rows:
        for mode in args.modes:
            per_round = [count // args.rounds + (1 if r < count % args.rounds else 0)
                         for r in range(args.rounds)]
            for r, n in enumerate(per_round):
                if n == 0:
                    continue
                order = (OFF, ON) if r % 2 == 0 else (ON, OFF)
                for i, server in enumerate(order):
                    # Each registry gets distinct versions per round; the same modules (same
                    # bytes) go to both registries, in a different round half.
                    zips = []
                    for j in range(n):
                        module = f"example.com/bench/publish/{row}/{mode}/r{r}/m{j:04d}"
                        zips.append((module, module_zip(module, size, seed=module)))
                    wall, lat, answers = run_batch(ports[server], zips, concurrency[mode])
                    cell = results.setdefault((row, mode, server), {"wall": 0.0, "lat": []})
                    cell["wall"] += wall
                    cell["lat"].extend(lat)
                    published[server] += len(zips)
                    if server == ON and sample is None:
                        sample = next(iter(answers.items()))
                    del zips
                print(f"bench-publish: {row} {mode} round {r + 1}/{args.rounds}: "
                      f"{n} per registry", file=sys.stderr)

    # The numbers mean something only if the ledger recorded every publish, and only there.
    on_base = f"http://127.0.0.1:{ports[ON]}/go/{REPO}/sumdb/{LEDGER_NAME}"
    status, _, body = http("GET", f"{on_base}/latest")
    if status != 200:
        die(f"{on_base}/latest answered {status}: {body.decode(errors='replace')}")
    tree = verify_note(body.decode(), verifier).splitlines()
    if len(tree) < 3 or tree[0] != "go.sum database tree":
        die(f"{on_base}/latest is not a tree head:\n{body.decode()}")
    tree_size = int(tree[1])
    if tree_size != published[ON]:
        die(f"the ledger's tree has {tree_size} records, the registry accepted {published[ON]} "
            f"publishes")
    module, lines = sample
    status, _, body = http("GET", f"{on_base}/lookup/{module}@{VERSION}")
    if status != 200 or lines.strip() not in body.decode():
        die(f"lookup of {module}@{VERSION}: {status}, want the publish's lines {lines!r}:\n"
            f"{body.decode(errors='replace')}")
    off_url = f"http://127.0.0.1:{ports[OFF]}/go/{REPO}/sumdb/{LEDGER_NAME}/latest"
    status, _, _ = http("GET", off_url)
    if status == 200:
        die(f"the registry without [ledger] serves {off_url}: both registries have the ledger")

    print()
    print(f"Publish with the registry's checksum database on vs off "
          f"(PUT /api/repos/{REPO}/upload, {storage_label}, {args.rounds} interleaved rounds)")
    print(f"{'row':<10} {'mode':<15} {'server':<11} {'n':>5} {'median ms':>10} {'p90 ms':>8} "
          f"{'total s':>8} {'publ/s':>8}")
    summary = []
    for row, size, count in rows:
        for mode in args.modes:
            cells = {}
            for server in (OFF, ON):
                c = results[(row, mode, server)]
                med = statistics.median(c["lat"])
                cells[server] = (med, c["wall"])
                print(f"{size_label[row]:<10} {mode_label[mode]:<15} {server:<11} "
                      f"{len(c['lat']):>5} {fmt_ms(med):>10} {fmt_ms(percentile(c['lat'], 0.9)):>8} "
                      f"{c['wall']:>8.2f} {len(c['lat']) / c['wall']:>8.1f}")
            summary.append((size_label[row], mode_label[mode], cells[ON][1] / cells[OFF][1],
                            cells[ON][0] / cells[OFF][0]))
    print()
    print(f"on/off ratios, {args.storage} storage (target: total time <= {TARGET_RATIO:.2f})")
    print(f"{'row':<10} {'mode':<15} {'total time':>10} {'median':>8}")
    for size, mode, total, med in summary:
        verdict = "ok" if total <= TARGET_RATIO else "ABOVE TARGET"
        print(f"{size:<10} {mode:<15} {total:>10.3f} {med:>8.3f}  {verdict}")
    print()
    print(f"ledger check: /latest of {LEDGER_NAME} signed by {verifier.split('+')[1]}, tree size "
          f"{tree_size} = {published[ON]} publishes; lookup of {module}@{VERSION} answers its "
          f"publish's go.sum lines; the registry without [ledger] has no such route ({status})")


if __name__ == "__main__":
    main()
