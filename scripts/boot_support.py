"""What the deploy boot tests share (scripts/check-compose.sh's boot test and
scripts/chart_boot.py): free ports, plain HTTP without proxies, a SigV4 bucket creation for
MinIO, and the processes they start — each in its own process group, recorded in a pid file the
calling shell's trap can fall back on, stopped in reverse start order.

Standard library only; import it with the scripts directory on sys.path.
"""

import datetime
import hashlib
import hmac
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request


class Fail(Exception):
    """A check failed: the message says why (no traceback)."""


def stop_on_sigterm():
    """SIGTERM unwinds like an exception, through `finally` blocks that stop the processes."""

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method, url, body=None, headers=None, timeout=5):
    """(status, body) of one request, errors statuses included; never through a proxy."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with NO_PROXY.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def sigv4_put_bucket(endpoint_host, bucket, access_key, secret_key, region="us-east-1"):
    """Creates `bucket` on the S3 server at `endpoint_host` (host:port, plain HTTP)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(b"").hexdigest()
    headers = f"host:{endpoint_host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n"
    signed = "host;x-amz-content-sha256;x-amz-date"
    creq = f"PUT\n/{bucket}\n\n{headers}\n{signed}\n{payload}"
    scope = f"{day}/{region}/s3/aws4_request"
    sts = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
    k = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    auth = f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={sig}"
    return http("PUT", f"http://{endpoint_host}/{bucket}", body=b"",
                headers={"Authorization": auth, "x-amz-date": amz_date,
                         "x-amz-content-sha256": payload})


def create_bucket(endpoint_host, bucket, access_key, secret_key, region="us-east-1"):
    """(status, body) of creating `bucket`. MinIO can report ready before it takes requests
    (503 XMinioServerNotInitialized): that, and only that, is retried."""
    for _ in range(60):
        status, body = sigv4_put_bucket(endpoint_host, bucket, access_key, secret_key, region)
        if status != 503:
            break
        time.sleep(0.5)
    return status, body


def tail(log, n=40):
    try:
        lines = open(log, errors="replace").read().splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in lines[-n:])


class Processes:
    """The processes a boot test starts. `say` reports (a stop taking too long)."""

    def __init__(self, pidfile_path, say, grace=35):
        self.pidfile_path = pidfile_path
        self.pidfile = open(pidfile_path, "a")
        self.say = say
        self.grace = grace
        self.procs = []

    def start(self, name, argv, env, cwd, log):
        logf = open(log, "wb")
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.pidfile.write(f"{proc.pid}\n")
        self.pidfile.flush()
        self.procs.append((name, proc, log))
        return proc

    def wait_http(self, name, proc, log, url, want=200, deadline=60):
        """The body of `url` once it answers `want`; Fail if the process exits first (exit 64:
        its configuration was rejected) or the deadline passes."""
        end, last = time.time() + deadline, None
        while time.time() < end:
            rc = proc.poll()
            if rc is not None:
                raise Fail(f"{name} exited with status {rc} before it was ready"
                           + (" (64: the configuration was rejected)" if rc == 64 else "")
                           + f":\n{tail(log)}")
            try:
                status, body = http("GET", url, timeout=2)
                if status == want:
                    return body
                last = f"{status} {body[:300]!r}"
            except OSError as e:
                last = str(e)
            time.sleep(0.2)
        raise Fail(f"{name} not ready at {url} after {deadline}s (last: {last}):\n{tail(log)}")

    def wait_redis(self, port, log):
        """Waits until the Redis on `port` answers PING."""
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise Fail(f"redis-server did not answer PING:\n{tail(log)}")

    def start_minio(self, minio_bin, directory, port, env, log, deadline=90):
        """MinIO serving `directory`/data on 127.0.0.1:`port` (its console on a free port),
        with `env` (root credentials, region), once it reports ready."""
        proc = self.start("minio", [minio_bin, "server", os.path.join(directory, "data"),
                                    "--address", f"127.0.0.1:{port}",
                                    "--console-address", f"127.0.0.1:{free_port()}",
                                    "--certs-dir", os.path.join(directory, "certs")],
                          {**env, "MINIO_BROWSER": "off", "MINIO_UPDATE": "off"}, directory, log)
        self.wait_http("minio", proc, log, f"http://127.0.0.1:{port}/minio/health/ready",
                       deadline=deadline)
        return proc

    def stop_all(self):
        """In reverse start order, each after the one started after it has exited (edges and
        workers before the registry, the services before Redis and MinIO); SIGKILL after the
        grace period. The pid file then lists only what is still running."""
        for name, proc, log in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                self.say(f"{name} did not stop within {self.grace} s of SIGTERM; killing it")
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        mine = {str(proc.pid) for _, proc, _ in self.procs}
        try:
            with open(self.pidfile_path) as f:
                keep = [line for line in f if line.strip() and line.strip() not in mine]
            with open(self.pidfile_path, "w") as f:
                f.writelines(keep)
        except OSError:
            pass
