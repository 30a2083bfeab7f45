#!/usr/bin/env python3
"""Benchmark: `strata verify` (CheckZip validation + h1 in one streaming pass) against `sha256sum`
over the same 200 MiB module zip, side by side in one run, plus peak RSS of the verifier.

Usage: core_verify.py STRATA_BINARY [--size-mib 200] [--runs 7] [--workdir DIR]
Prints medians, the throughput ratio (sha256sum time / strata time; 1.0 = as fast as hashing the
zip bytes once) and the peak RSS. Stdlib only.
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MODULE = "example.com/Bench/large"
VERSION = "v1.0.0"


def make_tree(root: str, size_mib: int) -> None:
    """A module tree whose zip is about `size_mib` MiB: mostly incompressible blobs (testdata,
    assets) plus compressible Go-like sources, as large real modules look."""
    rng = random.Random(42)
    os.makedirs(os.path.join(root, "testdata"), exist_ok=True)
    os.makedirs(os.path.join(root, "pkg"), exist_ok=True)
    with open(os.path.join(root, "go.mod"), "w") as f:
        f.write(f"module {MODULE}\n\ngo 1.22\n")
    blob_mib = max(1, size_mib * 9 // 10)
    for i in range(blob_mib):
        with open(os.path.join(root, "testdata", f"blob{i:04}.bin"), "wb") as f:
            f.write(rng.randbytes(1 << 20))
    src = "".join(
        f"func F{i}(x int) int {{\n\treturn x*{i} + {rng.randrange(1 << 30)}\n}}\n\n" for i in range(2000)
    ).encode()
    text_bytes = 0
    i = 0
    while text_bytes < (size_mib - blob_mib) * 3 * (1 << 20):
        with open(os.path.join(root, "pkg", f"file{i:04}.go"), "wb") as f:
            f.write(b"package pkg\n\n" + src)
        text_bytes += len(src)
        i += 1


def run(cmd):
    """Runs cmd, returning (wall seconds, peak RSS KiB); fails loudly on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if status != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed: {err}")
    return elapsed, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("strata")
    ap.add_argument("--size-mib", type=int, default=200)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="strata-bench-")
    try:
        tree = os.path.join(work, "tree")
        zip_path = os.path.join(work, "large.zip")
        if not os.path.exists(zip_path):
            make_tree(tree, args.size_mib)
            subprocess.run(
                [args.strata, "zip", tree, "--module", MODULE, "--version", VERSION, "-o", zip_path],
                check=True, stdout=subprocess.DEVNULL,
            )
        size = os.path.getsize(zip_path)
        # Warm the page cache so both sides read from memory.
        with open(zip_path, "rb") as f:
            while f.read(1 << 24):
                pass
        have_openssl = shutil.which("openssl") is not None
        sha, ossl, ver, rss = [], [], [], []
        for _ in range(args.runs):  # interleaved, so drift affects every side alike
            t, _ = run(["sha256sum", zip_path])
            sha.append(t)
            if have_openssl:
                t, _ = run(["openssl", "dgst", "-sha256", zip_path])
                ossl.append(t)
            t, r = run([args.strata, "verify", zip_path])
            ver.append(t)
            rss.append(r)
        ms, mv = statistics.median(sha), statistics.median(ver)
        mib = size / (1 << 20)
        print(f"zip: {mib:.1f} MiB ({zip_path}), {args.runs} interleaved runs, medians:")
        print(f"  sha256sum            {ms * 1000:8.1f} ms  {mib / ms:8.1f} MiB/s")
        if ossl:
            mo = statistics.median(ossl)
            print(f"  openssl dgst -sha256 {mo * 1000:8.1f} ms  {mib / mo:8.1f} MiB/s  (SHA-NI baseline)")
        print(f"  strata verify        {mv * 1000:8.1f} ms  {mib / mv:8.1f} MiB/s  (validation + h1)")
        print(f"  throughput ratio     {ms / mv:8.2f}   (strata / sha256sum; aim >= 0.8)")
        if ossl:
            print(f"  vs openssl           {statistics.median(ossl) / mv:8.2f}")
        print(f"  strata peak RSS      {max(rss) / 1024:8.1f} MiB (max over runs; aim < 64 MiB)")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
