#!/usr/bin/env python3
"""Bootstrap for a fresh machine with only Python 3.11+.

    python3 dev.py up     install into .venv (first run), then `lms-events up`
    python3 dev.py test   install into .venv (first run), then the whole test suite
    python3 dev.py lms-events ARGS...
                          any `lms-events` command from .venv, e.g. `keys list`, `sql "SELECT ..."`

Extra arguments are passed on (`python3 dev.py test -k e2e -x`). The
virtualenv is re-synced whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".lms-events-installed"
EXTRAS = ".[embedded,dev]"
PYTEST_NO_TESTS = 5


def _fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_installed() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"lms-events needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"creating virtualenv in {VENV}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("installing lms-events and its dependencies (first run takes a minute)", file=sys.stderr)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", EXTRAS], check=True, cwd=ROOT)
    STAMP.write_text(_fingerprint())


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("up", "test", "install", "lms-events"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    ensure_installed()
    if command == "install":
        return 0
    if command in ("up", "lms-events"):
        args = ["up", *rest] if command == "up" else rest
        os.execv(str(BIN / "lms-events"), [str(BIN / "lms-events"), *args])
    code = subprocess.call([str(BIN / "python"), "-m", "pytest", *rest], cwd=ROOT)
    if code == PYTEST_NO_TESTS:
        print("dev.py: pytest collected no tests; that is a failure", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
