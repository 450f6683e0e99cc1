#!/usr/bin/env python3
"""Every test a document names exists.

The tables in docs/ name the tests that hold each rule, as `module::test` (a module of the
integration tests in tests/integration/, e.g. `rules::proof::typ_must_be_dpop_jwt`),
`binary::test` (a test binary of its own, e.g. `redis::...`) or `module::tests::test` (unit
tests of the library, the path possibly shortened to its last segments). This lists the tests cargo knows
(`cargo test --all-features -- --list`) and fails when a document names one that does not exist.

    scripts/check_test_refs.py            # builds the tests if needed
"""
import glob
import re
import subprocess
import sys

names = set()
binaries = set()
binary = None
proc = subprocess.run(
    "cargo test --all-features --locked -- --list --format terse 2>&1",
    shell=True, capture_output=True, text=True, check=True,
)
for line in proc.stdout.splitlines():
    m = re.match(r"\s*Running (?:unittests )?(\S+)", line)
    if m:
        path = m.group(1)
        t = re.match(r"tests/([^/]+?)(?:\.rs|/main\.rs)$", path)
        binary = t.group(1) if t else ("examples" if path.startswith("examples/") else "lib")
        if t:
            binaries.add(binary)
        continue
    m = re.match(r"(.+): test$", line)
    if m and binary:
        name = m.group(1).split(" - ")[0].strip()
        if binary == "integration":
            # One binary of modules: a module is named like a test binary of its own.
            binaries.add(name.split("::")[0])
            names.add(name)
        else:
            names.add(name if binary in ("lib", "examples") else f"{binary}::{name}")

def exists(ref: str) -> bool:
    if ref.endswith("::*"):
        prefix = ref[:-3]
        return any(n == prefix or n.startswith(prefix + "::") for n in names)
    return any(n == ref or n.endswith("::" + ref) for n in names)

bad = []
for doc in sorted(glob.glob("docs/*.md")):
    text = open(doc, encoding="utf-8").read()
    for row in text.splitlines():
        if not row.startswith("|"):
            continue
        # Only the tests column(s): references with a test-like last segment.
        for ref in re.findall(r"`([a-z_0-9]+(?:::[a-z_0-9]+)+(?:::\*)?)`", row):
            head = ref.split("::")[0]
            is_test_binary = head in binaries
            if not (is_test_binary or "::tests::" in ref or ref.startswith("unit")):
                continue
            if not exists(ref):
                bad.append(f"{doc}: `{ref}`")
if bad:
    print("check_test_refs: documents name tests that do not exist:")
    print("\n".join("  " + b for b in bad))
    sys.exit(1)
print(f"check_test_refs: {len(names)} tests known; every test the documents name exists")
