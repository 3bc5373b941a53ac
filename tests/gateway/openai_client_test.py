#!/usr/bin/python3
"""The official `openai` npm client (tests/gateway/openai/package.json, locked
in package-lock.json) against real lvs processes through lvs-gateway.

  openai_client_test.py install DIR   npm ci into DIR (exit 77: no npm)
  openai_client_test.py run DIR       runs openai/videos_test.mjs with node
"""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from stack import Stack  # noqa: E402

SKIP = 77


def install(dest):
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        print("SKIPPED: npm/node not found (Debian: apt-get install npm); the openai client "
              "test needs them")
        return SKIP
    os.makedirs(dest, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(os.path.join(HERE, "openai", name), os.path.join(dest, name))
    return subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", dest]).returncode


def run(dest):
    if not os.path.isdir(os.path.join(dest, "node_modules", "openai")):
        print("SKIPPED: the openai package is not installed (no npm)")
        return SKIP
    keys = os.path.join(dest, "keys.txt")
    with open(keys, "w") as f:
        f.write("sk-lvs-test\n")
    with Stack(server_flags=[f"--api-keys-file={keys}"],
               worker_flags=["--fake-step-ms=20"]) as s:
        env = dict(os.environ, OPENAI_BASE_URL=f"{s.base}/v1", OPENAI_API_KEY="sk-lvs-test",
                   LVS_OPENAI_DIR=dest)
        r = subprocess.run(["node", os.path.join(HERE, "openai", "videos_test.mjs")],
                           env=env, timeout=180)
        if r.returncode != 0:
            raise SystemExit(r.returncode)
    return 0


if __name__ == "__main__":
    sys.exit({"install": install, "run": run}[sys.argv[1]](sys.argv[2]))
