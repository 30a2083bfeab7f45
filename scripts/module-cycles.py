#!/usr/bin/env python3
"""Fails when the top-level modules of a crate's src/ depend on each other in a cycle.

An edge a -> b is any `crate::b` path (or `crate::{b, ...}` group) in a file of module a: code,
tests and doc links alike, so a cycle cannot hide in a comment either. Usage:
    scripts/module-cycles.py crates/edge-proxy/src crates/sync-worker/src
Prints each strongly connected component with its edges and exits 1 when there is one.
"""
import os
import re
import sys


def graph(root):
    mods = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            top = os.path.relpath(path, root).split("/")[0].removesuffix(".rs")
            if top in ("lib", "main"):
                continue
            with open(path, encoding="utf-8") as f:
                src = f.read()
            deps = set(re.findall(r"crate::([a-z_][a-z0-9_]*)", src))
            for group in re.findall(r"crate::\{([^}]*)\}", src):
                deps |= set(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
            mods.setdefault(top, set()).update(d for d in deps if d != top)
    return mods


def cycles(mods):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in mods.get(v, ()):
            if w not in mods:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(mods):
        if v not in index:
            visit(v)
    return out


def main(roots):
    failed = False
    for root in roots:
        mods = graph(root)
        found = cycles(mods)
        if not found:
            print(f"{root}: no module cycles ({len(mods)} top-level modules)")
            continue
        failed = True
        for component in found:
            print(f"{root}: cycle among {', '.join(component)}")
            for m in component:
                print(f"  {m} -> {', '.join(sorted(d for d in mods[m] if d in component))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
