#!/usr/bin/env python3
"""The crate's declared `rust-version` is at least what its dependencies declare.

The machine has one Rust toolchain, so the MSRV cannot be built here. What can be checked:
clippy's `incompatible_msrv` lint (on by default) refuses standard-library APIs newer than the
declared `rust-version`, and this script refuses a `rust-version` lower than that of any crate in
the normal dependency tree, as Cargo.lock resolves it, with every feature on.

    scripts/check_msrv.py
"""
import json
import subprocess
import sys


def version(text):
    parts = [int(x) for x in (text or "0").split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
    capture_output=True, text=True, check=True,
).stdout)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
root = next(p for p in meta["packages"] if p["name"] == "tower-dpop")
declared = version(root["rust_version"])

seen, stack = set(), [root["id"]]
while stack:
    pid = stack.pop()
    if pid in seen:
        continue
    seen.add(pid)
    for dep in nodes[pid]["deps"]:
        if any(k["kind"] in (None, "build") for k in dep["dep_kinds"]):
            stack.append(dep["pkg"])

needs = max(((version(packages[p].get("rust_version")), packages[p]["name"]) for p in seen if p != root["id"]))
shown = ".".join(map(str, declared))
if needs[0] > declared:
    print(f"check_msrv: rust-version {shown} is lower than {needs[1]}'s {'.'.join(map(str, needs[0]))}")
    sys.exit(1)
print(f"check_msrv: rust-version {shown}; the highest of the dependencies is {needs[1]}'s "
      f"{'.'.join(map(str, needs[0]))}")
