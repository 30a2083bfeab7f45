"""Process and HTTP helpers shared by the benchmarks (stdlib only): starting servers with their
pids recorded for the shell wrapper's cleanup trap, stopping them, waiting for readiness, and
plain HTTP. The importing script sets NAME, which prefixes every message.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

NAME = "bench"
processes = []  # (name, Popen), stopped in reverse order


def die(msg):
    raise SystemExit(f"{NAME}: {msg}")


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
                print(f"{NAME}: {name} ignored SIGTERM; killing it", file=sys.stderr)
                proc.kill()
                proc.wait()
    processes.clear()


def run_then_stop_all(run, args):
    """Runs `run(args)` with SIGTERM turned into an exit (status 128 + 15), and stops every
    process `start` started however it ends."""

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        run(args)
    finally:
        stop_all()


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
