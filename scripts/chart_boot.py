"""The rendered Helm chart's configuration, booted: the driver of scripts/check-chart-boot.sh.

    python chart_boot.py CENTRAL.yaml EDGE.yaml BIN_DIR MINIO WORK PIDFILE

CENTRAL.yaml and EDGE.yaml are `helm template` outputs (the central release: registry + worker;
the edge-only release). For each strata container (Deployment/StatefulSet, component registry,
worker or edge) it takes the binary, arguments, environment and mounted ConfigMap/Secret files
exactly as rendered, and changes only what cannot exist on this host — every change is one of
the substitutions below, and each is printed:

  * paths of the pod's volume mounts (/etc/strata, /var/lib/strata/spool, /var/cache/strata,
    /tmp) → the same paths under a per-pod temporary root;
  * 0.0.0.0:<containerPort> in a config file → 127.0.0.1:<free port> (a listen address on a
    port the container does not declare fails);
  * addresses of the central release the edge names → the local registry: in-cluster Service
    names (<svc>.<ns>.svc[.cluster.local]:<port>), the registry Ingress hosts (https://HOST: TLS
    ends at the ingress, so http://127.0.0.1:<registry http>), and the operator's DNS name for
    the registry's gRPC LoadBalancer (OPERATOR_DNS: it is named only in a comment of
    deploy/helm/examples/central.yaml, not in any rendered object);
  * Secrets the operator creates (existingSecret) → stand-ins: the Redis URL of the local
    redis-server, MinIO's root keys as AWS keys, and for the checksum database ([ledger], the
    example's `strata-ledger` Secret) a signer key made here with `strata sumdb keygen <the
    rendered ledger name>` in place of the operator's (OPERATOR_SECRETS);
  * AWS_ENDPOINT_URL=<MinIO> added to the environment of every container whose storage is S3
    without an endpoint: the AWS SDK's default chain honours it (the registry builds its client
    from aws_config::defaults and only overrides the endpoint when storage.endpoint is set), so
    this is what an operator of an S3-compatible store would set through registry.extraEnv /
    worker.extraEnv. The rendered [storage] section is NOT edited;
  * the edge's Ingress (https://goproxy.eu.example.com, TLS ending at the ingress) → a
    TLS-terminating stand-in on 127.0.0.1 forwarding to the edge's HTTP port: the go command
    sends .netrc credentials only over HTTPS (and refuses user:token@ in an http:// GOPROXY);
  * the worker mounts the registry's Secret (registry.toml) for its embedded engine: its listen
    addresses get the registry's local ports (the worker binds neither);
  * the all-zero placeholder token hash of the example (`tokens[].sha256`) → the sha256 of a
    token made with `strata token new` (README: rotate a token).

Anything else — every other key of every file, every other variable — goes to the binaries
unchanged, so a value a service rejects fails the boot (exit 64 is reported as such).

With the ledger on, the go command runs as a client of it: GOSUMDB = the verifier key
`strata sumdb keygen` printed (which must be the `verifier_key` the registry logs), no GONOSUMDB,
so it reads the database through GOPROXY (the edge's /sumdb/<name>/…) and verifies the module
against the signed log; the tiles it fetched must be in $GOMODCACHE/cache/download/sumdb/<name>/.
A second go command with another key of the same name must refuse the download.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boot_support import Fail, Processes, create_bucket, free_port, http, stop_on_sigterm, tail  # noqa: E402
from deploy_configs import load, secret_data  # noqa: E402

central_path, edge_path, bin_dir, minio_bin, work, pidfile_path = sys.argv[1:7]

COMPONENTS = {"registry": "strata-registry", "worker": "strata-sync", "edge": "strata-edge"}
# Where each component answers /readyz: (TOML table, key) of its own config file.
READY = {"registry": ("server", "http"), "worker": ("server", "http"), "edge": ("server", "admin_listen")}
# The operator's DNS names for the central release's LoadBalancer Services (from the comments
# of deploy/helm/examples/central.yaml and edge-eu.yaml; no rendered object carries them):
# name → (component, Service type, port).
OPERATOR_DNS = {"registry-grpc.example.internal": ("registry", "LoadBalancer")}
PATH_KEYS = {"dir", "root", "spool_dir", "config", "cert", "key", "ca", "client_ca"}
BAD_WARNINGS = re.compile(r"is not a setting of this service and is ignored|is deprecated|is ignored:")
MODULE, VERSION = "go.corp.example.com/chart-check/hello", "v0.1.0"


def say(msg):
    print(f"chart-boot: {msg}", file=sys.stderr, flush=True)


stop_on_sigterm()

substitutions = []


def subst(where, old, new, why):
    substitutions.append((where, old, new, why))


# ---- the rendered objects -----------------------------------------------------------------------
class Pod:
    pass


def pods_of(docs, release, operator_secrets):
    secrets = {d["metadata"]["name"]: secret_data(d) for d in docs if d["kind"] == "Secret"}
    cms = {d["metadata"]["name"]: dict(d.get("data") or {}) for d in docs if d["kind"] == "ConfigMap"}
    out = {}
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        comp = d["metadata"]["labels"].get("app.kubernetes.io/component")
        if comp not in COMPONENTS:
            continue
        spec = d["spec"]["template"]["spec"]
        ctr = spec["containers"][0]
        p = Pod()
        p.release, p.component, p.workload = release, comp, d["metadata"]["name"]
        p.name = f"{release}/{comp}"
        p.command = list(ctr.get("command") or [])
        p.args = [str(a) for a in ctr.get("args") or []]
        if not p.command or os.path.basename(p.command[0]) != COMPONENTS[comp]:
            raise Fail(f"{p.name}: command {p.command} does not run {COMPONENTS[comp]}")
        p.ports = {pt["name"]: pt["containerPort"] for pt in ctr.get("ports") or []}

        def secret_key(name, key, optional=False, where=""):
            if name in secrets:
                data = secrets[name]
            elif name in operator_secrets:
                data = operator_secrets[name]
            else:
                raise Fail(f"{p.name}: {where} refers to Secret {name}, which neither the chart "
                           "nor the operator (this test's stand-ins) creates")
            if key not in data:
                if optional:
                    return None
                raise Fail(f"{p.name}: {where}: Secret {name} has no key {key}")
            return data[key]

        env = {}
        for ef in ctr.get("envFrom") or []:
            if "secretRef" in ef:
                n = ef["secretRef"]["name"]
                env.update(secrets.get(n) or operator_secrets.get(n) or {})
            elif "configMapRef" in ef:
                env.update(cms.get(ef["configMapRef"]["name"], {}))
        for e in ctr.get("env") or []:
            name = e["name"]
            if "value" in e:
                env[name] = str(e["value"])
                continue
            vf = e.get("valueFrom") or {}
            if "secretKeyRef" in vf:
                r = vf["secretKeyRef"]
                v = secret_key(r["name"], r["key"], r.get("optional", False), f"env {name}")
                if r["name"] not in secrets and v.startswith("PRIVATE+KEY+"):
                    subst(f"{p.name} env {name}", f"Secret {r['name']} key {r['key']} (operator's)",
                          "+".join(v.split("+")[:4]) + "+…",
                          f"stand-in for the operator's signer key: `strata sumdb keygen "
                          f"{v.split('+')[2]}` (verifier key {LEDGER_VERIFIER})")
                elif r["name"] not in secrets:
                    subst(f"{p.name} env {name}", f"Secret {r['name']} key {r['key']} (operator's)",
                          v, "stand-in for the Secret the operator creates")
            elif "configMapKeyRef" in vf:
                r = vf["configMapKeyRef"]
                v = cms.get(r["name"], {}).get(r["key"])
            elif "fieldRef" in vf:
                fp = vf["fieldRef"]["fieldPath"]
                if fp != "metadata.name":
                    raise Fail(f"{p.name}: env {name}: fieldRef {fp} is not mapped by this test")
                v = f"{p.workload}-0"
                subst(f"{p.name} env {name}", "fieldRef metadata.name", v, "the pod's name")
            else:
                raise Fail(f"{p.name}: env {name}: {vf} is not mapped by this test")
            if v is not None:
                env[name] = v
        p.env = env

        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        claims = {c["metadata"]["name"] for c in d["spec"].get("volumeClaimTemplates") or []}
        p.files, p.dirs = {}, []
        for m in ctr.get("volumeMounts") or []:
            mp = m["mountPath"]
            v = volumes.get(m["name"])
            if v is None:
                if m["name"] not in claims:
                    raise Fail(f"{p.name}: mount {mp}: no volume {m['name']}")
                p.dirs.append(mp)
                continue
            sources = []
            if "configMap" in v:
                sources = [("cm", v["configMap"])]
            elif "secret" in v:
                sources = [("secret", {**v["secret"], "name": v["secret"]["secretName"]})]
            elif "projected" in v:
                for s in v["projected"]["sources"]:
                    if "configMap" in s:
                        sources.append(("cm", s["configMap"]))
                    elif "secret" in s:
                        sources.append(("secret", s["secret"]))
            else:
                p.dirs.append(mp)       # emptyDir, PVC: a writable directory
                continue
            content = {}
            for kind, src in sources:
                data = cms.get(src["name"]) if kind == "cm" else (secrets.get(src["name"]) or operator_secrets.get(src["name"]))
                if data is None:
                    raise Fail(f"{p.name}: mount {mp}: {kind} {src['name']} is not rendered")
                items = src.get("items") or [{"key": k, "path": k} for k in data]
                for it in items:
                    content[it["path"]] = data[it["key"]]
            if m.get("subPath"):
                p.files[mp] = content[m["subPath"]]
            else:
                p.dirs.append(mp)
                for rel, text in content.items():
                    p.files[f"{mp.rstrip('/')}/{rel}"] = text
        if "--config" not in p.args:
            raise Fail(f"{p.name}: args {p.args} have no --config FILE")
        p.config = p.args[p.args.index("--config") + 1]
        if p.config not in p.files:
            raise Fail(f"{p.name}: --config {p.config} is not a file the pod mounts")
        out[comp] = p
    return out


def services_of(docs, pods):
    """host[:port] forms of each Service → (component, container port)."""
    out = {}
    for d in docs:
        if d["kind"] != "Service":
            continue
        comp = d["spec"].get("selector", {}).get("app.kubernetes.io/component")
        if comp not in pods:
            continue
        meta = d["metadata"]
        for pt in d["spec"]["ports"]:
            tp = pt.get("targetPort", pt["port"])
            cport = pods[comp].ports.get(tp, tp) if isinstance(tp, str) else tp
            for host in (meta["name"], f"{meta['name']}.{meta.get('namespace')}",
                         f"{meta['name']}.{meta.get('namespace')}.svc",
                         f"{meta['name']}.{meta.get('namespace')}.svc.cluster.local"):
                out[f"{host}:{pt['port']}"] = (comp, cport)
            for dns, (c, typ) in OPERATOR_DNS.items():
                if c == comp and d["spec"].get("type") == typ:
                    out[f"{dns}:{pt['port']}"] = (comp, cport)
    return out


def ingress_hosts(docs):
    out = {}
    for d in docs:
        if d["kind"] != "Ingress":
            continue
        for rule in d["spec"].get("rules") or []:
            for path in rule.get("http", {}).get("paths", []):
                svc = path["backend"]["service"]
                out[rule["host"]] = (svc["name"], svc["port"].get("name") or svc["port"].get("number"))
    return out


# ---- the plan: what runs where ------------------------------------------------------------------
os.makedirs(work, exist_ok=True)
redis_port, minio_port = free_port(), free_port()
minio_key, minio_secret = "chart-boot-access", "chart-boot-secret-key"
REDIS_URL = f"redis://127.0.0.1:{redis_port}/0"
OPERATOR_SECRETS = {
    "strata-redis": {"url": REDIS_URL},
    "strata-s3": {"AWS_ACCESS_KEY_ID": minio_key, "AWS_SECRET_ACCESS_KEY": minio_secret},
}

central_docs, edge_docs = load(central_path), load(edge_path)


def keygen(name):
    """(signer key, verifier key) of a new checksum database key named `name`."""
    r = subprocess.run([os.path.join(bin_dir, "strata"), "sumdb", "keygen", name],
                       capture_output=True, text=True)
    m = re.search(r"verifier key \(clients set GOSUMDB to it\): (\S+)", r.stderr)
    if r.returncode != 0 or not r.stdout.startswith(f"PRIVATE+KEY+{name}+") or not m:
        raise SystemExit(f"chart-boot: strata sumdb keygen {name} failed ({r.returncode}): {r.stderr}")
    return r.stdout.strip(), m.group(1)


# The checksum database the central release renders ([ledger] of its registry.toml), if any.
LEDGER = None
for d in central_docs:
    if d["kind"] == "Secret" and "registry.toml" in secret_data(d):
        LEDGER = tomllib.loads(secret_data(d)["registry.toml"]).get("ledger")
if LEDGER:
    LEDGER_SIGNER, LEDGER_VERIFIER = keygen(LEDGER["name"])
    OPERATOR_SECRETS["strata-ledger"] = {"signer-key": LEDGER_SIGNER}
central = pods_of(central_docs, "central", OPERATOR_SECRETS)
edge_rel = pods_of(edge_docs, "edge-eu", OPERATOR_SECRETS)
for comp in ("registry", "worker"):
    if comp not in central:
        raise SystemExit(f"chart-boot: the central release renders no {comp}")
if not LEDGER:
    raise SystemExit("chart-boot: the central release renders no [ledger]: the go command here is a "
                     "client of the registry's checksum database (ledger.enabled in central.yaml)")
if set(edge_rel) != {"edge"}:
    raise SystemExit(f"chart-boot: the edge release must render only an edge, got {sorted(edge_rel)}")
pods = [central["registry"], central["worker"], edge_rel["edge"]]

# Local ports for every container port; the owner of each config file (its listen addresses).
local = {}      # (release, component, container port) → local port
for p in pods:
    for cport in p.ports.values():
        local[(p.release, p.component, cport)] = free_port()
owner = {"registry.toml": "registry", "worker.toml": "worker", "edge.toml": "edge"}

addr_map = {}   # in-cluster / operator address (host:port) → 127.0.0.1:port
for docs, rel, rpods in ((central_docs, "central", central), (edge_docs, "edge-eu", edge_rel)):
    for hostport, (comp, cport) in services_of(docs, rpods).items():
        addr_map[hostport] = f"127.0.0.1:{local[(rel, comp, cport)]}"
url_map = {}    # https://INGRESS-HOST → http://127.0.0.1:port (TLS ends at the ingress)
for docs, rel, rpods in ((central_docs, "central", central),):
    svcs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for host, (svc, port) in ingress_hosts(docs).items():
        comp = svcs[svc]["spec"]["selector"]["app.kubernetes.io/component"]
        cport = rpods[comp].ports[port] if isinstance(port, str) else port
        url_map[f"https://{host}"] = f"http://127.0.0.1:{local[(rel, comp, cport)]}"

token_out = subprocess.run([os.path.join(bin_dir, "strata"), "token", "new", "--name", "ci",
                            "--repo", "private"], capture_output=True, text=True, check=True).stdout
TOKEN = re.search(r"^token: (strata_\S+)$", token_out, re.M).group(1)
TOKEN_SHA = hashlib.sha256(TOKEN.encode()).hexdigest()
if f'sha256 = "{TOKEN_SHA}"' not in token_out:
    raise SystemExit("chart-boot: `strata token new` printed a hash that is not the token's sha256")
PLACEHOLDER = "0" * 64


def rewrite_file(p, cpath, text):
    where = f"{p.name} {cpath}"
    own = owner.get(os.path.basename(cpath), p.component)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise Fail(f"{where}: not TOML: {e}")

    def bind(m):
        cport = int(m.group(1))
        key = (p.release, own, cport)
        if key not in local:
            raise Fail(f"{where}: listens on {m.group(0)}, a port the {own} container does not "
                       "declare (its Service cannot reach it)")
        new = f'"127.0.0.1:{local[key]}"'
        subst(where, m.group(0), new, "pod listen address → free loopback port")
        return new
    text = re.sub(r'"(?:0\.0\.0\.0|\[::\]):(\d+)"', bind, text)
    for old, new in sorted(url_map.items(), key=lambda kv: -len(kv[0])):
        if re.search(re.escape(old) + r'(?=["/])', text):
            text = re.sub(re.escape(old) + r'(?=["/])', new, text)
            subst(where, old, new, "registry Ingress (TLS ends there) → local registry HTTP")
    for old, new in sorted(addr_map.items(), key=lambda kv: -len(kv[0])):
        pat = r'(?<=[/"])' + re.escape(old) + r'(?=["/])'
        if re.search(pat, text):
            text = re.sub(pat, new, text)
            subst(where, old, new, "in-cluster/operator address → local process")
    if f'sha256 = "{PLACEHOLDER}"' in text:
        text = text.replace(f'sha256 = "{PLACEHOLDER}"', f'sha256 = "{TOKEN_SHA}"')
        subst(where, f'sha256 = "{PLACEHOLDER}"', f'sha256 = "{TOKEN_SHA}"',
              "the example's placeholder → a `strata token new` token (README: rotate a token)")
    mounts = sorted(set(p.dirs) | set(p.files), key=len, reverse=True)
    # One pass over all mounts (longest first), so a rewritten path is not rewritten again.
    seen = set()

    def mount(mm):
        m = mm.group(1)
        if m not in seen:
            seen.add(m)
            subst(where, m, p.root + m, "pod mount → temp dir")
        return p.root + m
    pat = r'(?<=")(' + "|".join(re.escape(m) for m in mounts) + r')(?=["/])'
    text = re.sub(pat, mount, text)
    # Every absolute path must now be in a mount (the image is read-only).
    def walk(node, prefix=""):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in PATH_KEYS and isinstance(v, str):
                    yield prefix + k, v
                yield from walk(v, prefix + k + ".")
        elif isinstance(node, list):
            for v in node:
                yield from walk(v, prefix)
    for key, value in walk(tomllib.loads(text)):
        if value.startswith("/") and not value.startswith(p.root + "/"):
            raise Fail(f"{where}: {key} = {value!r} is outside the pod's mounts {mounts}")
    return text


def plan(p):
    p.root = os.path.join(work, "pods", p.release, p.component)
    for dpath in p.dirs:
        os.makedirs(p.root + dpath, exist_ok=True)
    for cpath, text in p.files.items():
        dst = p.root + cpath
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "w") as f:
            f.write(rewrite_file(p, cpath, text))
    cfg = tomllib.loads(open(p.root + p.config).read())
    for k, v in list(p.env.items()):
        if re.search(r"(0\.0\.0\.0|\.svc\b|\.internal\b)", v):
            raise Fail(f"{p.name}: env {k}={v!r} names an address this test does not map")
    storage = cfg.get("storage") or (tomllib.loads(open(p.root + "/etc/strata/registry.toml").read()).get("storage")
                                     if p.component == "worker" else None) or {}
    if storage.get("kind") == "s3" and not storage.get("endpoint"):
        p.env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{minio_port}"
        subst(f"{p.name} env", "(AWS_ENDPOINT_URL unset: AWS S3 in " + str(storage.get("region")) + ")",
              f"AWS_ENDPOINT_URL=http://127.0.0.1:{minio_port}",
              "the AWS SDK default chain's endpoint override → MinIO (what registry/worker.extraEnv would set)")
    p.argv = [os.path.join(bin_dir, COMPONENTS[p.component])] + [
        (p.root + a if a.startswith("/") else a) for a in p.args]
    if p.argv[1:] != p.args:
        subst(f"{p.name} args", " ".join(p.args), " ".join(p.argv[1:]), "pod mount → temp dir")
    tmp = p.root + "/tmp"
    os.makedirs(tmp, exist_ok=True)
    p.full_env = {"PATH": "/usr/local/bin:/usr/bin:/bin",
                  "HOME": os.path.join(work, "home", p.release, p.component),
                  "TMPDIR": tmp, **p.env}
    os.makedirs(p.full_env["HOME"], exist_ok=True)
    table, key = READY[p.component]
    addr = cfg.get(table, {}).get(key, "")
    if not addr.startswith("127.0.0.1:"):
        raise Fail(f"{p.name}: {table}.{key} = {addr!r}: the probe port must listen on 0.0.0.0")
    p.ready_port = int(addr.rsplit(":", 1)[1])
    for r in cfg.get("registries") or []:
        for k in ("grpc", "http"):
            if r.get(k) and not re.match(r"https?://127\.0\.0\.1:\d+", r[k]):
                raise Fail(f"{p.name}: registries[{r.get('name')}].{k} = {r[k]!r} names an address "
                           "this test does not map (no Service, Ingress or OPERATOR_DNS entry)")
    p.cfg = cfg


# ---- processes ----------------------------------------------------------------------------------
processes = Processes(pidfile_path, say, grace=30)
start, wait_http, stop_all = processes.start, processes.wait_http, processes.stop_all
procs = processes.procs


def ingress_stand_in(backend):
    """An HTTPS listener on a free loopback port forwarding GET/HEAD to http://BACKEND (as the
    Ingress controller does). Returns (port, CA file)."""
    import http.client
    import http.server
    import ssl
    import threading
    pki = os.path.join(work, "pki")
    os.makedirs(pki, exist_ok=True)
    cert, key = os.path.join(pki, "tls.crt"), os.path.join(pki, "tls.key")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail(f"openssl could not make the Ingress stand-in's certificate:\n{r.stderr}")
    bhost, bport = backend.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def forward(self):
            conn = http.client.HTTPConnection(bhost, int(bport), timeout=30)
            hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
            hdrs["Host"] = self.headers.get("Host", "")
            hdrs["X-Forwarded-Proto"] = "https"
            conn.request(self.command, self.path, headers=hdrs)
            resp = conn.getresponse()
            body = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            conn.close()
        do_GET = do_HEAD = forward

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1], cert


base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.path.join(work, "home"),
            "TMPDIR": os.path.join(work, "tmp")}
os.makedirs(base_env["HOME"], exist_ok=True)
os.makedirs(base_env["TMPDIR"], exist_ok=True)
t_start = time.time()

try:
    for p in pods:
        plan(p)
    say("substitutions (everything else is passed through as rendered):")
    for where, old, new, why in substitutions:
        print(f"    {where}: {old}  →  {new}    [{why}]", file=sys.stderr)

    reg_cfg = central["registry"].cfg
    storage = reg_cfg.get("storage") or {}
    if storage.get("kind") != "s3":
        raise Fail(f"the central registry's storage is {storage.get('kind')!r}, not s3")
    bucket, region = storage["bucket"], storage.get("region") or "us-east-1"

    rdir = os.path.join(work, "redis")
    os.makedirs(rdir)
    start("redis", [shutil.which("redis-server"), "--port", str(redis_port), "--bind", "127.0.0.1",
                    "--dir", rdir, "--save", "", "--appendonly", "no", "--daemonize", "no"],
          base_env, rdir, os.path.join(work, "redis.log"))
    processes.wait_redis(redis_port, os.path.join(work, "redis.log"))
    say(f"redis-server on 127.0.0.1:{redis_port} (Secret strata-redis url = {REDIS_URL})")
    mdir = os.path.join(work, "minio")
    os.makedirs(mdir)
    processes.start_minio(minio_bin, mdir, minio_port,
                          {**base_env, "MINIO_ROOT_USER": minio_key,
                           "MINIO_ROOT_PASSWORD": minio_secret, "MINIO_REGION": region},
                          os.path.join(work, "minio.log"), deadline=60)
    status, body = create_bucket(f"127.0.0.1:{minio_port}", bucket, minio_key, minio_secret, region)
    if status != 200:
        raise Fail(f"creating bucket {bucket} in MinIO failed: {status} {body[:400]!r}")
    say(f"minio on 127.0.0.1:{minio_port} (region {region}); bucket {bucket} created; "
        f"Secret strata-s3 = MinIO's keys")

    for p in pods:
        log = os.path.join(work, f"{p.release}-{p.component}.log")
        say(f"starting {p.name}: {' '.join(p.command + p.args)}")
        proc = start(p.name, p.argv, p.full_env, p.root + "/tmp", log)
        p.proc, p.log = proc, log
        wait_http(p.name, proc, log, f"http://127.0.0.1:{p.ready_port}/readyz", deadline=45)
        say(f"{p.name} ready: /readyz 200 on 127.0.0.1:{p.ready_port}")

    # Publish with the token whose hash is now in the rendered registry configuration.
    reg = central["registry"]
    reg_http = reg.cfg["server"]["http"]
    mod_dir = os.path.join(work, "module")
    os.makedirs(mod_dir)
    with open(os.path.join(mod_dir, "go.mod"), "w") as f:
        f.write(f"module {MODULE}\n\ngo 1.22\n")
    with open(os.path.join(mod_dir, "hello.go"), "w") as f:
        f.write("// Package hello is published by scripts/check-chart-boot.sh.\npackage hello\n\n"
                "// Hello greets.\nfunc Hello() string { return \"hello from the chart\" }\n")
    pub = subprocess.run([os.path.join(bin_dir, "strata"), "publish", mod_dir, "--repo", "private",
                          "--version", VERSION, "--registry", f"http://{reg_http}"],
                         env={**base_env, "STRATA_TOKEN": TOKEN}, capture_output=True, text=True, timeout=60)
    if pub.returncode != 0:
        raise Fail(f"strata publish failed ({pub.returncode}):\n{pub.stdout}{pub.stderr}\n"
                   f"registry log:\n{tail(reg.log)}")
    m = re.search(rf"^{re.escape(MODULE)} {re.escape(VERSION)} (h1:\S+)$", pub.stdout, re.M)
    if not m:
        raise Fail(f"strata publish printed no go.sum line for {MODULE} {VERSION}:\n{pub.stdout}")
    want_sum = m.group(1)
    say(f"strata publish --repo private {MODULE}@{VERSION} → http://{reg_http}: ok ({want_sum})")
    prefix = storage.get("prefix", "")
    stored = os.path.join(work, "minio", "data", bucket, prefix.rstrip("/"))
    if not os.path.isdir(stored) or not any(files for _, _, files in os.walk(stored)):
        raise Fail(f"nothing was stored in MinIO under {bucket}/{prefix}: the registry did not use MinIO")
    say(f"the module's objects are in MinIO under s3://{bucket}/{prefix}")

    # go mod download through the edge's "/" route — the GOPROXY URL the NOTES print first and
    # users set (the `go` virtual repository over private and gocache) — with the token as
    # Basic credentials.
    e = edge_rel["edge"]
    eaddr = e.cfg["server"]["listen"]
    routes = {r["prefix"]: r["repository"] for r in e.cfg.get("routes", [])}
    route = "/"
    if route not in routes:
        raise Fail(f"the edge has no \"/\" route (the GOPROXY URL users set): {routes}")
    status, _ = http("GET", f"http://{eaddr}{route}{MODULE}/@v/list")
    if status not in (401, 403):
        raise Fail(f"anonymous GET {route}{MODULE}/@v/list on the edge answered {status}: "
                   "anonymous_read = false is not enforced")
    say(f"anonymous GET {route}…/@v/list on the edge: {status} (anonymous_read = false holds)")
    # The go command sends credentials (.netrc) only over HTTPS, and the example ends TLS at the
    # edge's Ingress (goproxy.eu.example.com): a TLS-terminating stand-in for that Ingress, with
    # a throwaway certificate for 127.0.0.1, forwards to the edge's plain HTTP port unchanged.
    ing_port, ing_cert = ingress_stand_in(eaddr)
    for host in ingress_hosts(edge_docs):
        subst("edge-eu Ingress", f"https://{host}", f"https://127.0.0.1:{ing_port}",
              "TLS-terminating stand-in for the edge's Ingress → edge HTTP " + eaddr)
        say(f"edge Ingress https://{host} → https://127.0.0.1:{ing_port} (TLS stand-in) → http://{eaddr}")
    netrc = os.path.join(work, "netrc")
    with open(netrc, "w") as f:
        # Older go commands match the host name, newer ones may include the port: list both.
        f.write(f"machine 127.0.0.1:{ing_port} login ci password {TOKEN}\n"
                f"machine 127.0.0.1 login ci password {TOKEN}\n")
    # The checksum database: the registry logs the verifier key of the signer key it was given
    # (what NOTES.txt tells operators to look for); clients put it in GOSUMDB.
    db = LEDGER["name"]
    m = re.search(r'"verifier_key":"([^"]+)"', open(reg.log, errors="replace").read())
    if not m or m.group(1) != LEDGER_VERIFIER:
        raise Fail(f"the registry logs verifier_key {m and m.group(1)!r}, not the keygen's "
                   f"{LEDGER_VERIFIER!r}:\n{tail(reg.log)}")
    say(f"the registry logs verifier_key {LEDGER_VERIFIER} (= `strata sumdb keygen {db}`'s)")

    def go_download(gopath, gosumdb):
        # GOSUMDB is the verifier key alone, so the go command reads the database through
        # GOPROXY (<proxy>/sumdb/<name>/supported, then lookups and tiles): no GONOSUMDB,
        # GOPRIVATE or GONOSUMCHECK, so the private module is verified like any other.
        genv = {**base_env, "GOPROXY": f"https://127.0.0.1:{ing_port}{route}",
                "NETRC": netrc, "SSL_CERT_FILE": ing_cert, "GOSUMDB": gosumdb,
                "GOPRIVATE": "", "GONOPROXY": "", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local",
                "GOPATH": gopath, "GOMODCACHE": os.path.join(gopath, "pkg", "mod"),
                "GOCACHE": os.path.join(work, "gocache"), "GO111MODULE": "on"}
        return subprocess.run([shutil.which("go"), "mod", "download", "-json", f"{MODULE}@{VERSION}"],
                              env=genv, cwd=base_env["TMPDIR"], capture_output=True, text=True, timeout=60)

    gopath = os.path.join(work, "gopath")
    dl = go_download(gopath, LEDGER_VERIFIER)
    if dl.returncode != 0:
        raise Fail(f"go mod download through the edge failed ({dl.returncode}):\n{dl.stdout}{dl.stderr}\n"
                   f"edge log:\n{tail(e.log)}\nregistry log:\n{tail(reg.log)}")
    info = json.loads(dl.stdout)
    if info.get("Error") or info.get("Sum") != want_sum:
        raise Fail(f"go mod download through the edge: {info} (want Sum {want_sum})")
    if "hello from the chart" not in open(os.path.join(info["Dir"], "hello.go")).read():
        raise Fail(f"go mod download through the edge: unexpected content in {info['Dir']}")
    # What the go command fetched from the database: its lookup of the version and tiles.
    sumdb_cache = os.path.join(gopath, "pkg", "mod", "cache", "download", "sumdb", db)
    fetched = sorted(os.path.relpath(os.path.join(d, f), sumdb_cache)
                     for d, _, fs in os.walk(sumdb_cache) for f in fs)
    tiles = [f for f in fetched if f.startswith("tile/")]
    lookups = [f for f in fetched if f.startswith("lookup/")]
    if not tiles or not lookups:
        raise Fail(f"the go command fetched no tiles/lookups of {db}: {sumdb_cache} holds {fetched}")
    if not os.path.isfile(os.path.join(gopath, "pkg", "sumdb", db, "latest")):
        raise Fail(f"the go command kept no tree head of {db} ($GOPATH/pkg/sumdb/{db}/latest)")
    say(f"go mod download {MODULE}@{VERSION} via the edge (GOPROXY=https://127.0.0.1:{ing_port}{route}, "
        f".netrc login ci password <token>, GOSUMDB={LEDGER_VERIFIER}, no GONOSUMDB): "
        f"ok, Sum {info['Sum']} = the publish's; verified against {db}: "
        f"{len(lookups)} lookup(s), {len(tiles)} tile(s) in $GOMODCACHE/cache/download/sumdb/{db}/ "
        f"({', '.join(tiles[:4])}{', …' if len(tiles) > 4 else ''})")
    # The verification is real: another key of the same name must not verify this log.
    _, other = keygen(db)
    bad = go_download(os.path.join(work, "gopath-other-key"), other)
    try:
        why = json.loads(bad.stdout).get("Error") or ""
    except ValueError:
        why = ""
    why = (why or bad.stderr).strip()
    if bad.returncode == 0 or "verifying" not in why:
        raise Fail(f"go mod download with GOSUMDB={other} (another key of {db}) did not fail "
                   f"verifying the log's signature ({bad.returncode}):\n{bad.stdout}{bad.stderr}")
    say(f"with another key of {db} in GOSUMDB the go command refuses: {why.splitlines()[0][:240]}")

    for name, proc, log in procs:
        if proc.poll() is not None:
            raise Fail(f"{name} exited with status {proc.returncode}:\n{tail(log)}")
    for p in pods:
        bad = [l for l in open(p.log, errors="replace") if BAD_WARNINGS.search(l)]
        if bad:
            raise Fail(f"{p.name} ignores part of its rendered configuration:\n" + "".join(bad))
    for p in pods:
        mounts = set(p.dirs) | set(p.files)
        for dirpath, _, filenames in os.walk(p.root):
            for fname in filenames:
                cpath = os.path.join(dirpath, fname)[len(p.root):]
                if not any(cpath == m or cpath.startswith(m.rstrip("/") + "/") for m in mounts):
                    raise Fail(f"{p.name} wrote {cpath}, outside its mounts (readOnlyRootFilesystem)")
    say(f"every rendered service booted, published and served: ok ({time.time() - t_start:.1f}s)")
except Fail as e:
    say(f"FAIL: {e}")
    stop_all()
    sys.exit(1)
finally:
    stop_all()
