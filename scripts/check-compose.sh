#!/usr/bin/env bash
# Checks the container build and the laptop fleet without Docker:
#   1. hadolint on the Dockerfile (no warnings);
#   2. deploy/compose/docker-compose.yml against the compose specification's JSON schema;
#   3. yamllint on deploy/compose/;
#   4. the boot test: every strata service of the compose file started as the REAL debug binary
#      with exactly the service's `command`, `environment` (and `env_file`) and mounted config
#      files, on a real redis-server and a real MinIO, then a `strata publish` to the registry and
#      a `go mod download` of that module through each edge — with GOSUMDB set to the registry's
#      checksum database ([ledger], the verifier key registry.toml documents, which must be the
#      one the registry logs) and no GONOSUMDB: the go command must fetch and verify its tiles.
#
#   scripts/check-compose.sh                  # everything
#   STRATA_BIN_DIR=/path/to/bins scripts/check-compose.sh
#
# The boot test maps the container world onto this host: compose host names (redis, minio,
# registry, …) become 127.0.0.1, every container port a free local port, every container path a
# mount covers a directory under a temporary root. Anything it cannot map — a reference to a host
# or port no service listens on, a published port the service does not listen on, a path outside
# the service's mounts (the image is read-only), credentials that disagree — fails the check. A
# value a service rejects (unknown key: exit 64) fails it too, as does an environment variable the
# service ignores or calls deprecated.
#
# Tools: scripts/deploy-tools.sh (`scripts/deploy-tools.sh ensure` installs them), redis-server,
# minio ($(go env GOPATH)/bin, as scripts/ensure-deps.sh installs it), go, and the debug binaries
# (strata-registry, strata-edge, strata-sync, strata): built here into $CARGO_TARGET_DIR, or taken
# from $STRATA_BIN_DIR when set.
set -euo pipefail
exec 3>&2   # the script's stderr, for the exit trap (which may run inside a redirection)

cd "$(dirname "$0")/.."
ROOT=$PWD

fail() { echo "check-compose: FAIL: $*" >&2; exit 1; }
step() { echo "check-compose: == $*" >&2; }

# shellcheck source=scripts/deploy-tools.sh
source scripts/deploy-tools.sh
for tool in "$HADOLINT" "$CHECK_JSONSCHEMA" "$YAMLLINT" "$DEPLOY_PY"; do
  [ -x "$tool" ] || fail "$tool is missing: run scripts/deploy-tools.sh ensure"
done
"$DEPLOY_PY" -c 'import yaml, tomllib' 2>/dev/null || fail "$DEPLOY_PY lacks PyYAML or tomllib (Python 3.11+): run scripts/deploy-tools.sh ensure"

COMPOSE=deploy/compose/docker-compose.yml
[ -f Dockerfile ] || fail "Dockerfile is missing"
[ -f "$COMPOSE" ] || fail "$COMPOSE is missing"

step "hadolint Dockerfile"
"$HADOLINT" --failure-threshold warning Dockerfile || fail "hadolint found problems in Dockerfile"

step "check-jsonschema --builtin-schema vendor.compose-spec $COMPOSE"
"$CHECK_JSONSCHEMA" --builtin-schema vendor.compose-spec "$COMPOSE" \
  || fail "$COMPOSE does not match the compose specification"

step "yamllint deploy/compose"
"$YAMLLINT" --strict -d '{extends: relaxed, rules: {line-length: {max: 100}}}' deploy/compose \
  || fail "yamllint found problems in deploy/compose"

# ---- the boot test ---------------------------------------------------------------------------
step "boot test: the compose services as real processes"
BIN_DIR=$(scripts/service-bins.sh) || fail "the service binaries could not be built"
command -v redis-server >/dev/null || fail "redis-server is missing: run make deps (scripts/ensure-deps.sh)"
command -v go >/dev/null || fail "go is missing"
MINIO=$(command -v minio || true)
[ -n "$MINIO" ] || MINIO="$(go env GOPATH | cut -d: -f1)/bin/minio"
[ -x "$MINIO" ] || fail "minio is missing: run make deps (scripts/ensure-deps.sh)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-compose.XXXXXX")
# Every process the boot test starts leads its own process group; its id is in $WORK/pids.
# The driver stops them itself; this trap is the backstop (a failure, ^C, a killed driver).
DRIVER=""
cleanup() {
  local status=$? pid
  if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
    kill -TERM "$DRIVER" 2>/dev/null || true   # it stops what it started, then exits
    wait "$DRIVER" 2>/dev/null || true
  fi
  if [ -s "$WORK/pids" ]; then
    while read -r pid; do
      [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null || true
    done <"$WORK/pids"
    sleep 1
    while read -r pid; do
      [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || true
    done <"$WORK/pids"
  fi
  if [ "$status" -eq 0 ] && [ -z "${STRATA_KEEP_WORK:-}" ]; then
    rm -rf "$WORK"
  else
    echo "check-compose: logs and state kept in $WORK" >&3
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat >"$WORK/boot.py" <<'PY'
import hashlib, json, os, re, subprocess, sys, time, tomllib
import shutil

# boot.py ROOT COMPOSE BIN_DIR MINIO WORK PIDFILE
root, compose_rel, bin_dir, minio_bin, work, pidfile_path = sys.argv[1:7]
compose_path = os.path.join(root, compose_rel)
compose_dir = os.path.dirname(compose_path)

import yaml

# The shared helpers of this checkout (ROOT may be a self-check's copy of deploy/compose).
sys.path.insert(0, os.environ["STRATA_SCRIPTS_DIR"])
from boot_support import Fail, Processes, create_bucket, free_port, stop_on_sigterm, tail

STRATA_BINARIES = {"strata-registry", "strata-edge", "strata-sync", "strata"}
# Where each binary serves /healthz and /readyz: (TOML table, key, environment override).
HEALTH = {
    "strata-registry": ("server", "http", "STRATA_REGISTRY_HTTP_LISTEN"),
    "strata-sync": ("server", "http", "STRATA_SYNC_HTTP_LISTEN"),
    "strata-edge": ("server", "admin_listen", None),
}
GOPROXY_LISTEN = ("server", "listen", "STRATA_EDGE_LISTEN")
# Config keys whose values are file system paths (absolute ones must lie in a mount).
PATH_KEYS = {"dir", "root", "spool_dir", "config", "cert", "key", "ca", "client_ca"}
# Warnings of the shared config loader that mean a compose value does nothing.
BAD_WARNINGS = re.compile(r"is not a setting of this service and is ignored|is deprecated|is ignored:")

def _report(kind, err, tb):
    if issubclass(kind, Fail):
        say(f"FAIL: {err}")
    else:
        sys.__excepthook__(kind, err, tb)
sys.excepthook = _report

stop_on_sigterm()      # unwinds through `finally`, which stops every process

def say(msg):
    print(f"boot-test: {msg}", file=sys.stderr, flush=True)

# ---- the compose file -------------------------------------------------------------------------
with open(compose_path) as f:
    compose = yaml.safe_load(f)
services = compose.get("services") or {}
if not services:
    raise SystemExit("no services in the compose file")

def as_list(command, name):
    if command is None:
        return []
    if isinstance(command, str):
        raise Fail(f"service {name}: use the exec (list) form of command, not a string")
    return [str(c) for c in command]

def env_file_of(svc):
    """The variables of the service's env_file(s), in order (compose reads them at creation,
    and `environment` wins over them): KEY=VALUE lines, `#` comments and blank lines skipped."""
    files = svc.get("env_file") or []
    if isinstance(files, (str, dict)):
        files = [files]
    out = {}
    for item in files:
        path, required = (item.get("path"), item.get("required", True)) if isinstance(item, dict) else (item, True)
        full = os.path.normpath(os.path.join(compose_dir, str(path)))
        if not os.path.isfile(full):
            if required:
                raise Fail(f"env_file {path} is not a file next to the compose file")
            continue
        for n, line in enumerate(open(full).read().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            k, sep, v = line.partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k.strip()):
                raise Fail(f"env_file {path} line {n}: not KEY=VALUE")
            out[k.strip()] = v.strip()
    return out

def env_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            k, _, v = str(item).partition("=")
            out[k] = v
        env = out
    return {**env_file_of(svc), **{str(k): "" if v is None else str(v) for k, v in env.items()}}

strata = {n: s for n, s in services.items() if s.get("image") == "strata:dev"}
expected = {"registry": "strata-registry", "worker": "strata-sync",
            "edge-eu": "strata-edge", "edge-us": "strata-edge"}
for name, binary in expected.items():
    if name not in strata:
        raise SystemExit(f"service {name} (image strata:dev) is missing from the compose file")
    cmd = as_list(strata[name].get("command"), name)
    if not cmd or cmd[0] != binary:
        raise SystemExit(f"service {name}: command must start with {binary}, got {cmd}")
for name, svc in strata.items():
    build = svc.get("build") or {}
    ctx = os.path.normpath(os.path.join(compose_dir, build.get("context", ".")))
    if ctx != os.path.normpath(root) or build.get("dockerfile", "Dockerfile") != "Dockerfile":
        raise SystemExit(f"service {name}: build must be the repository root's Dockerfile, got {build}")
    cmd = as_list(svc.get("command"), name)
    if not cmd or cmd[0] not in STRATA_BINARIES:
        raise SystemExit(f"service {name}: command {cmd} does not run a strata binary")
    if svc.get("entrypoint") is not None:
        raise SystemExit(f"service {name}: the image has no shell; entrypoint must not be set")

# The image must carry every binary the compose file runs.
dockerfile = open(os.path.join(root, "Dockerfile")).read()
for name, svc in strata.items():
    binary = as_list(svc.get("command"), name)[0]
    if f"target/release/{binary}" not in dockerfile:
        raise SystemExit(f"service {name} runs {binary}, which the Dockerfile does not install")

for infra in ("redis", "minio", "minio-init"):
    if infra not in services:
        raise SystemExit(f"service {infra} is missing from the compose file")

# ---- address mapping --------------------------------------------------------------------------
# (service, container port) → local port. Listeners are found in each strata service's files and
# environment (0.0.0.0:PORT / [::]:PORT); redis and minio listen where their commands say.
listeners = {}

def listen(service, port):
    key = (service, int(port))
    if key not in listeners:
        listeners[key] = free_port()
    return listeners[key]

redis_cmd = as_list(services["redis"].get("command"), "redis")
redis_port = 6379
if "--port" in redis_cmd:
    redis_port = int(redis_cmd[redis_cmd.index("--port") + 1])
listen("redis", redis_port)
minio_cmd = as_list(services["minio"].get("command"), "minio")
minio_port = 9000
if "--address" in minio_cmd:
    minio_port = int(minio_cmd[minio_cmd.index("--address") + 1].rsplit(":", 1)[1])
listen("minio", minio_port)

BIND_RE = re.compile(r"(?<![\w.-])(?:0\.0\.0\.0|\[::\]):(\d+)\b")
HOST_RE = re.compile(r"(?<![\w.-])([a-z][a-z0-9-]*):(\d+)\b")

# What each binary listens on: (TOML table, key, environment override). Only these are a
# service's listeners; another file's listen address (the registry.toml the worker mounts for
# its embedded engine) binds nothing and is mapped to an unused port.
LISTENERS = {
    "strata-registry": [("server", "http", "STRATA_REGISTRY_HTTP_LISTEN"),
                        ("server", "grpc", "STRATA_REGISTRY_GRPC_LISTEN")],
    "strata-edge": [("server", "listen", "STRATA_EDGE_LISTEN"),
                    ("server", "admin_listen", None)],
    "strata-sync": [("server", "http", "STRATA_SYNC_HTTP_LISTEN")],
}

def declare_listeners(p):
    """Registers the service's listeners from its --config file (or the override variable);
    each must bind all interfaces, or nothing outside the container reaches it."""
    binary = p.cmd[0]
    if binary not in LISTENERS:
        return
    if "--config" not in p.cmd:
        raise Fail(f"service {p.name}: command has no --config FILE")
    cpath = p.cmd[p.cmd.index("--config") + 1]
    if cpath not in p.files:
        raise Fail(f"service {p.name}: --config {cpath} is not a file mounted into the service")
    cfg = tomllib.loads(open(p.files[cpath]).read())
    for table, key, env_name in LISTENERS[binary]:
        addr = p.env.get(env_name) if env_name else None
        if addr is None:
            addr = cfg.get(table, {}).get(key)
        m = re.fullmatch(r"(?:0\.0\.0\.0|\[::\]):(\d+)", addr or "")
        if not m:
            raise Fail(f"service {p.name}: {table}.{key} = {addr!r}: inside a container it must "
                       "listen on 0.0.0.0:PORT (unset means the loopback default)")
        listen(p.name, m.group(1))

def rewrite_addresses(service, text, where):
    """0.0.0.0:P → 127.0.0.1:<local of (service, P)>; <compose service>:P → 127.0.0.1:<local>."""
    def bind(m):
        key = (service, int(m.group(1)))
        return f"127.0.0.1:{listeners[key] if key in listeners else free_port()}"
    text = BIND_RE.sub(bind, text)
    def host(m):
        name, port = m.group(1), int(m.group(2))
        if name not in services:
            return m.group(0)
        if (name, port) not in listeners:
            raise Fail(f"{where}: {name}:{port} — service {name} does not listen on {port}")
        return f"127.0.0.1:{listeners[(name, port)]}"
    return HOST_RE.sub(host, text)

# ---- mounts: container paths → directories under a per-service root ---------------------------
class Svc:
    pass

plans = {}
for name, svc in strata.items():
    p = Svc()
    p.name, p.svc = name, svc
    p.root = os.path.join(work, "svc", name)
    p.cmd = as_list(svc.get("command"), name)
    p.env = env_of(svc)
    p.files = {}      # container path → repo file
    p.mounts = []     # container paths (files and directories)
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            src, dst, typ = v.get("source"), v["target"], v.get("type")
        else:
            parts = str(v).split(":")
            src, dst = parts[0], parts[1]
            typ = "bind" if src.startswith((".", "/")) else "volume"
        if typ == "bind":
            host = os.path.normpath(os.path.join(compose_dir, src))
            if not os.path.isfile(host):
                raise Fail(f"service {name}: bind mount {src} is not a file in the repository")
            p.files[dst] = host
        p.mounts.append(dst)
    for t in svc.get("tmpfs") or []:
        p.mounts.append(str(t).split(":")[0])
    p.workdir = svc.get("working_dir", "/var/lib/strata")   # the image's WORKDIR
    plans[name] = p
    declare_listeners(p)

def local_path(p, cpath, where):
    best = None
    for m in p.mounts:
        if cpath == m or cpath.startswith(m.rstrip("/") + "/"):
            if best is None or len(m) > len(best):
                best = m
    if best is None:
        raise Fail(f"{where}: {cpath} is not in any mount of service {p.name} "
                   f"(the image is read-only; mounts: {p.mounts})")
    return p.root + cpath

def walk_paths(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in PATH_KEYS and isinstance(v, str):
                yield f"{prefix}{k}", v
            yield from walk_paths(v, f"{prefix}{k}.")
    elif isinstance(node, list):
        for v in node:
            yield from walk_paths(v, prefix)

def rewrite_paths(p, text, where):
    for m in sorted(p.mounts, key=len, reverse=True):
        text = re.sub(r'(["\'=\s])' + re.escape(m) + r'(?=["/\s]|$)',
                      lambda mm, m=m: mm.group(1) + p.root + m, text)
    return text

# Materialise each service's files, rewritten; check every absolute path is mounted.
for p in plans.values():
    for m in p.mounts:
        if m not in p.files:
            os.makedirs(p.root + m, exist_ok=True)
    for cpath, host in p.files.items():
        text = open(host).read()
        where = f"service {p.name}: {os.path.relpath(host, root)}"
        try:
            parsed = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise Fail(f"{where}: not TOML: {e}")
        for key, value in walk_paths(parsed):
            if value.startswith("/"):
                local_path(p, value, f"{where} ({key})")
            elif key.endswith("config"):    # [registry] config: relative to this file
                local_path(p, os.path.join(os.path.dirname(cpath), value), f"{where} ({key})")
        text = rewrite_paths(p, rewrite_addresses(p.name, text, where), where)
        dst = p.root + cpath
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "w") as f:
            f.write(text)
    for k, v in list(p.env.items()):
        where = f"service {p.name}: environment {k}"
        v = rewrite_addresses(p.name, v, where)
        if v.startswith("/"):
            v = local_path(p, v, where)
        p.env[k] = v
    args = []
    for a in p.cmd[1:]:
        args.append(local_path(p, a, f"service {p.name}: command") if a.startswith("/") else a)
    p.argv = [os.path.join(bin_dir, p.cmd[0])] + args
    p.cwd = p.root + p.workdir
    os.makedirs(p.cwd, exist_ok=True)

def listener_of(p, table, key, env_name):
    if env_name and env_name in p.env:
        addr = p.env[env_name]
    else:
        cfg = tomllib.loads(open(p.argv[p.argv.index("--config") + 1]).read())
        addr = cfg.get(table, {}).get(key)
        if not addr:
            raise Fail(f"service {p.name}: {table}.{key} is not set (its default is loopback "
                       "inside the container: nothing outside could reach it)")
    if not addr.startswith("127.0.0.1:"):
        raise Fail(f"service {p.name}: {table}.{key} = {addr}: listen on 0.0.0.0 in a container")
    return int(addr.rsplit(":", 1)[1])

# Published ports must be ports the service listens on.
local_to_container = {v: k for k, v in listeners.items()}
for p in plans.values():
    for spec in p.svc.get("ports") or []:
        target = int(str(spec).split(":")[-1].split("/")[0]) if not isinstance(spec, dict) else int(spec["target"])
        if (p.name, target) not in listeners:
            raise Fail(f"service {p.name}: publishes port {target}, which it does not listen on "
                       f"(it listens on {sorted(c for s, c in listeners if s == p.name)})")

# ---- processes ----------------------------------------------------------------------------------
processes = Processes(pidfile_path, say, grace=35)
start, wait_http, stop_all = processes.start, processes.wait_http, processes.stop_all
procs = processes.procs

GO = shutil.which("go")
REDIS_SERVER = shutil.which("redis-server")
# Children get a clean environment: what compose sets, nothing of this shell's (no AWS_*, no
# proxies), as in a container.
base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.path.join(work, "home"),
            "TMPDIR": os.path.join(work, "tmp")}
os.makedirs(base_env["HOME"]); os.makedirs(base_env["TMPDIR"])

def order(names):
    """The strata services in depends_on order."""
    done, out = set(), []
    def visit(n, stack=()):
        if n in done or n not in plans:
            return
        if n in stack:
            raise Fail(f"depends_on cycle through {n}")
        deps = plans[n].svc.get("depends_on") or {}
        for d in (deps if isinstance(deps, list) else deps.keys()):
            if d not in services:
                raise Fail(f"service {n} depends on unknown service {d}")
            visit(d, stack + (n,))
        done.add(n); out.append(n)
    for n in names:
        visit(n)
    return out

try:
    # Redis, with the compose service's arguments.
    rdir = os.path.join(work, "redis"); os.makedirs(rdir)
    args = [a for a in redis_cmd[1:]]
    start("redis", [REDIS_SERVER, *args, "--port", str(listeners[("redis", redis_port)]),
                    "--bind", "127.0.0.1", "--dir", rdir, "--daemonize", "no"],
          base_env, rdir, os.path.join(work, "redis.log"))
    rport = listeners[("redis", redis_port)]
    processes.wait_redis(rport, os.path.join(work, "redis.log"))
    say(f"redis-server on 127.0.0.1:{rport} (compose redis:{redis_port})")

    # MinIO, with the compose service's root credentials.
    menv = env_of(services["minio"])
    mdir = os.path.join(work, "minio"); os.makedirs(mdir)
    mport = listeners[("minio", minio_port)]
    processes.start_minio(minio_bin, mdir, mport, {**base_env, **menv},
                          os.path.join(work, "minio.log"))
    say(f"minio on 127.0.0.1:{mport} (compose minio:{minio_port})")

    # The bucket, exactly as the minio-init job makes it: `mc mb [--ignore-existing] ALIAS/BUCKET`
    # with MC_HOST_<alias>=http://KEY:SECRET@minio:PORT.
    init = services["minio-init"]
    icmd = as_list(init.get("command"), "minio-init")
    ienv = env_of(init)
    if init.get("entrypoint") is not None or not icmd or icmd[0] != "mb":
        raise Fail(f"minio-init: expected command [mb, --ignore-existing, ALIAS/BUCKET], got {icmd}")
    alias, _, bucket = icmd[-1].partition("/")
    url = ienv.get(f"MC_HOST_{alias}")
    m = re.fullmatch(r"http://([^:@]+):([^@]+)@([a-z0-9-]+):(\d+)", url or "")
    if not m:
        raise Fail(f"minio-init: MC_HOST_{alias} must be http://KEY:SECRET@HOST:PORT, got {url!r}")
    key, secret, host, port = m.group(1), m.group(2), m.group(3), int(m.group(4))
    if (host, port) not in listeners:
        raise Fail(f"minio-init: MC_HOST_{alias} points at {host}:{port}, where nothing listens")
    # (create_bucket retries MinIO's 503 before it takes requests, as `mc` would.)
    status, body = create_bucket(f"127.0.0.1:{listeners[(host, port)]}", bucket, key, secret)
    if status != 200 and not (status == 409 and "--ignore-existing" in icmd):
        raise Fail(f"minio-init: creating bucket {bucket} failed: {status} {body[:400]!r}")
    say(f"bucket {bucket} created with minio-init's credentials")

    # The strata services, in depends_on order.
    ready = {}
    for name in order(list(plans)):
        p = plans[name]
        binary = p.cmd[0]
        log = os.path.join(work, f"{name}.log")
        # The container's /tmp is this service's own: a tmpfs if compose mounts one, else part
        # of the read-only image (checked below: nothing may be left there).
        tmp = p.root + "/tmp"
        os.makedirs(tmp, exist_ok=True)
        env = {**base_env, "TMPDIR": tmp, **p.env}
        say(f"starting {name}: {' '.join(p.cmd)}  (as {' '.join(p.argv)})")
        proc = start(name, p.argv, env, p.cwd, log)
        table, key, env_name = HEALTH[binary]
        hport = listener_of(p, table, key, env_name)
        wait_http(name, proc, log, f"http://127.0.0.1:{hport}/healthz")
        wait_http(name, proc, log, f"http://127.0.0.1:{hport}/readyz", deadline=30)
        ready[name] = hport
        # Its compose health check, run as Docker would run it inside the container: the
        # image's own `strata probe` against the service's port.
        test = (p.svc.get("healthcheck") or {}).get("test")
        if not (isinstance(test, list) and test[:3] == ["CMD", "strata", "probe"] and len(test) >= 4):
            raise Fail(f"service {name}: healthcheck.test must be [CMD, strata, probe, "
                       f"http://127.0.0.1:PORT/readyz], got {test!r}")
        m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)(/\S*)", test[-1])
        if not m or (name, int(m.group(1))) not in listeners:
            raise Fail(f"service {name}: its healthcheck probes {test[-1]}, where it does not listen")
        probe_url = f"http://127.0.0.1:{listeners[(name, int(m.group(1)))]}{m.group(2)}"
        probe = subprocess.run([os.path.join(bin_dir, "strata"), *test[2:-1], probe_url],
                               capture_output=True, text=True, timeout=30)
        if probe.returncode != 0:
            raise Fail(f"service {name}: its healthcheck {' '.join(test[1:])} fails: {probe.stderr}")
        say(f"{name}: its healthcheck `{' '.join(test[1:])}` passes")
        say(f"{name} ready: /healthz and /readyz 200 on 127.0.0.1:{hport} "
            f"(container port {local_to_container.get(hport, ('?', '?'))[1]})")

    # Publish a small module with the token the registry configuration documents.
    reg = plans["registry"]
    reg_cfg_path = reg.argv[reg.argv.index("--config") + 1]
    reg_text = open(reg_cfg_path).read()
    m = re.search(r"STRATA_TOKEN=(strata_[A-Za-z0-9_-]+)", reg_text)
    if not m:
        raise Fail("registry.toml documents no STRATA_TOKEN=… for the fleet")
    token = m.group(1)
    reg_cfg = tomllib.loads(reg_text)
    digest = hashlib.sha256(token.encode()).hexdigest()
    if not any(t.get("sha256") == digest for t in reg_cfg.get("tokens", [])):
        raise Fail("the documented STRATA_TOKEN matches no [[tokens]] sha256 of registry.toml")
    reg_http = listener_of(reg, "server", "http", "STRATA_REGISTRY_HTTP_LISTEN")
    module, version = "example.com/compose-check/hello", "v0.1.0"
    mod_dir = os.path.join(work, "module"); os.makedirs(mod_dir)
    with open(os.path.join(mod_dir, "go.mod"), "w") as f:
        f.write(f"module {module}\n\ngo 1.22\n")
    with open(os.path.join(mod_dir, "hello.go"), "w") as f:
        f.write("// Package hello is published by scripts/check-compose.sh.\npackage hello\n\n"
                "// Hello greets.\nfunc Hello() string { return \"hello from the compose fleet\" }\n")
    pub = subprocess.run([os.path.join(bin_dir, "strata"), "publish", mod_dir, "--repo", "private",
                          "--version", version, "--registry", f"http://127.0.0.1:{reg_http}"],
                         env={**base_env, "STRATA_TOKEN": token}, capture_output=True, text=True,
                         timeout=120)
    print(pub.stdout, end="", file=sys.stderr)
    if pub.returncode != 0:
        raise Fail(f"strata publish failed ({pub.returncode}):\n{pub.stderr}\n"
                   f"registry log:\n{tail(os.path.join(work, 'registry.log'))}")
    m = re.search(rf"^{re.escape(module)} {re.escape(version)} (h1:\S+)$", pub.stdout, re.M)
    if not m:
        raise Fail(f"strata publish printed no go.sum line for {module} {version}:\n{pub.stdout}")
    want_sum = m.group(1)
    say(f"published {module}@{version} to the registry ({want_sum})")

    # The registry's checksum database ([ledger]): the GOSUMDB registry.toml documents for
    # clients must be the verifier key of the signer key the registry was given (it logs it).
    ledger = reg_cfg.get("ledger")
    if not ledger:
        raise Fail("registry.toml has no [ledger]: the fleet's go commands verify against it")
    db = ledger["name"]
    m = re.search(r"GOSUMDB=(\S+)", reg_text)
    if not m or not m.group(1).startswith(db + "+"):
        raise Fail(f"registry.toml documents no GOSUMDB={db}+… for its [ledger]")
    gosumdb = m.group(1)
    m = re.search(r'"verifier_key":"([^"]+)"', open(os.path.join(work, "registry.log"), errors="replace").read())
    if not m or m.group(1) != gosumdb:
        raise Fail(f"the registry logs verifier_key {m and m.group(1)!r}; registry.toml documents "
                   f"GOSUMDB={gosumdb}: the signer key (ledger.env) and the documented key disagree")
    say(f"[ledger] {db}: the registry's verifier_key is the documented GOSUMDB={gosumdb}")

    # go mod download through each edge, each with a fresh module cache.
    edges = [n for n in plans if plans[n].cmd[0] == "strata-edge"]
    for name in sorted(edges):
        p = plans[name]
        gport = listener_of(p, *GOPROXY_LISTEN)
        gopath = os.path.join(work, f"gopath-{name}")
        # GOSUMDB = the verifier key alone (no GONOSUMDB, GOPRIVATE, GONOSUMCHECK): the go
        # command verifies the private module against the ledger, read through GOPROXY
        # (<edge>/sumdb/<name>/…).
        genv = {**base_env, "GOPROXY": f"http://127.0.0.1:{gport}/", "GOSUMDB": gosumdb,
                "GOPRIVATE": "", "GONOPROXY": "", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local",
                "GOPATH": gopath, "GOMODCACHE": os.path.join(gopath, "pkg", "mod"),
                "GOCACHE": os.path.join(work, "gocache"), "GO111MODULE": "on"}
        t0 = time.time()
        dl = subprocess.run([GO, "mod", "download", "-json", f"{module}@{version}"], env=genv,
                            cwd=os.path.join(work, "tmp"), capture_output=True, text=True,
                            timeout=120)
        if dl.returncode != 0:
            raise Fail(f"go mod download through {name} failed ({dl.returncode}):\n{dl.stdout}{dl.stderr}\n"
                       f"{name} log:\n{tail(os.path.join(work, name + '.log'))}")
        info = json.loads(dl.stdout)
        if info.get("Error") or info.get("Sum") != want_sum:
            raise Fail(f"go mod download through {name}: {info}")
        src = open(os.path.join(info["Dir"], "hello.go")).read()
        if "hello from the compose fleet" not in src:
            raise Fail(f"go mod download through {name}: unexpected content in {info['Dir']}")
        cache = os.path.join(gopath, "pkg", "mod", "cache", "download", "sumdb", db)
        tiles = sorted(os.path.relpath(os.path.join(d, f), cache)
                       for d, _, fs in os.walk(os.path.join(cache, "tile")) for f in fs)
        if not tiles or not os.path.isdir(os.path.join(cache, "lookup")):
            raise Fail(f"go mod download through {name}: no tiles/lookup of {db} in {cache}: "
                       "the go command did not verify against the ledger")
        say(f"go mod download {module}@{version} via {name} (GOPROXY=http://127.0.0.1:{gport}/, "
            f"GOSUMDB={db}+…, no GONOSUMDB): ok, Sum {info['Sum']}, verified against {db} "
            f"({len(tiles)} tile(s): {', '.join(tiles[:3])}) ({time.time() - t0:.2f}s)")

    # Every service still running, and none warned that a compose value does nothing.
    for name, proc, log in procs:
        if proc.poll() is not None:
            raise Fail(f"{name} exited with status {proc.returncode}:\n{tail(log)}")
    for name in plans:
        log = os.path.join(work, f"{name}.log")
        bad = [l for l in open(log, errors="replace") if BAD_WARNINGS.search(l)]
        if bad:
            raise Fail(f"{name} ignores part of its compose configuration:\n" + "".join(bad))
    # The containers are read-only: nothing may have been written outside the mounts.
    for p in plans.values():
        for dirpath, dirnames, filenames in os.walk(p.root):
            for fname in filenames:
                cpath = os.path.join(dirpath, fname)[len(p.root):]
                if not any(cpath == m or cpath.startswith(m.rstrip("/") + "/") for m in p.mounts):
                    raise Fail(f"service {p.name} wrote {cpath}, outside its mounts: the container "
                               f"is read-only (mounts: {p.mounts})")
    say("nothing written outside the mounts (the containers are read-only)")
    say("every strata service of the compose file booted, published and served: ok")
except Fail as e:
    say(f"FAIL: {e}")
    stop_all()
    sys.exit(1)
finally:
    stop_all()
PY

# run_driver ROOT WORKDIR: the boot test of ROOT's compose file. In the background, so that a
# signal to this script reaches the trap at once (bash runs traps only between commands).
run_driver() {
  STRATA_SCRIPTS_DIR="$ROOT/scripts" \
    "$DEPLOY_PY" "$WORK/boot.py" "$1" "$COMPOSE" "$BIN_DIR" "$MINIO" "$2" "$WORK/pids" &
  DRIVER=$!
  local rc=0
  wait "$DRIVER" || rc=$?
  DRIVER=""
  return "$rc"
}

run_driver "$ROOT" "$WORK/run" || fail "the boot test failed (see above)"

# ---- the boot test must be able to fail --------------------------------------------------------
# Each case: a copy of the repository's Dockerfile and deploy/compose/ with one mistake the
# services (or the container world) would not accept; the boot test must fail on it, for the
# stated reason.
step "boot test self-check: mistakes in a copy of deploy/compose must fail it"
# negative NAME WANT FILE PYTHON-EXPR: FILE (relative to deploy/compose) becomes EXPR(text).
negative() {
  local name=$1 want=$2 file=$3 expr=$4 dir="$WORK/neg-$1" out rc=0
  mkdir -p "$dir/deploy"
  cp Dockerfile "$dir/"
  cp -r deploy/compose "$dir/deploy/"
  "$DEPLOY_PY" - "$dir/deploy/compose/$file" "$expr" <<'MUT' || fail "self-check $name: mutation failed"
import sys
path, expr = sys.argv[1], sys.argv[2]
text = open(path).read()
new = eval(expr, {"text": text})
if new == text:
    sys.exit(f"the mutation changed nothing in {path}")
open(path, "w").write(new)
MUT
  run_driver "$dir" "$dir/run" >"$dir/out" 2>&1 || rc=$?
  out=$(cat "$dir/out")
  if [ "$rc" -eq 0 ]; then
    echo "$out" >&2
    fail "self-check $name: the boot test passed a compose fleet with a mistake"
  fi
  grep -q -- "$want" <<<"$out" || { echo "$out" >&2; fail "self-check $name: failed, but not with '$want'"; }
  echo "check-compose: self-check $name: fails as it must:" >&2
  grep -m1 -A1 'FAIL: ' <<<"$out" | cut -c1-160 | sed 's/^/    /' >&2
}
negative unknown-key "unknown field \`memory_byte\`" config/edge.toml \
  'text.replace("[cache]\n", "[cache]\nmemory_byte = 1\n")'
negative bad-env "STRATA_SYNC_CONCURRENCY=\"two\": invalid digit" docker-compose.yml \
  'text.replace("STRATA_SYNC_CONCURRENCY: \"2\"", "STRATA_SYNC_CONCURRENCY: \"two\"")'
negative wrong-port "does not listen on 9091" config/edge.toml \
  'text.replace("registry:9090", "registry:9091")'
negative bad-credentials "SignatureDoesNotMatch" docker-compose.yml \
  'text.replace("AWS_SECRET_ACCESS_KEY: strata-dev-secret", "AWS_SECRET_ACCESS_KEY: wrong-secret")'
negative ignored-env "is ignored" docker-compose.yml \
  'text.replace("STRATA_EDGE_MEMORY_BYTES: \"67108864\"     # 64 MiB", "STRATA_EDGE_MEMORY_BYTE: \"67108864\"")'
negative loopback-listener "must listen on 0.0.0.0" config/edge.toml \
  'text.replace("admin_listen = \"0.0.0.0:9181\"", "admin_listen = \"127.0.0.1:9181\"")'
negative published-port "publishes port 8083" docker-compose.yml \
  'text.replace("127.0.0.1:8082:8081", "127.0.0.1:8082:8083")'
negative unmounted-path "is not in any mount" config/edge.toml \
  'text.replace("dir = \"/var/lib/strata/edge-cache\"", "dir = \"/srv/edge-cache\"")'
# The checksum database: the worker's embedded engine needs the signer key too; a key of another
# name is refused; the GOSUMDB documented for clients must be the key's.
negative ledger-key-missing "the variable STRATA_LEDGER_KEY is not set" docker-compose.yml \
  'text.replace("    # The embedded registry engine loads registry.toml'"'"'s [ledger] too: the same signer key.\n    env_file:\n      - ./ledger.env\n", "")'
OTHER_KEY=$("$BIN_DIR/strata" sumdb keygen sum.other.localhost 2>/dev/null) || fail "strata sumdb keygen failed"
negative ledger-other-key "holds the key of checksum database \"sum.other.localhost\"" ledger.env \
  "__import__('re').sub(r'(?m)^STRATA_LEDGER_KEY=.*\$', 'STRATA_LEDGER_KEY=$OTHER_KEY', text)"
negative ledger-documented-key "the signer key (ledger.env) and the documented key disagree" config/registry.toml \
  'text.replace("GOSUMDB=sum.compose.localhost+", "GOSUMDB=sum.compose.localhost+0", 1)'

step "ok"
