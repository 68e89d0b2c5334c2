"""Keep a working demo sandbox key for the local suite; print its secret on stdout.

Run with the project's venv (`.venv/bin/python scripts/demo_key.py`), standard library only.
The credentials live in `.run/demo.json`. If that file names a key, it is checked against the
running gateway (GET /api/v1/jobs/job_doesnotexist: 404 = the key authenticates, 401 = it
does not). When the file is missing or the key no longer works, a new demo account and a
`test` key are created with `clipmix-admin` and saved. Messages go to stderr; stdout is the
key only, so `KEY=$(.venv/bin/python scripts/demo_key.py)` works.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO_FILE = Path(os.environ.get("CLIPMIX_RUN_DIR") or ROOT / ".run") / "demo.json"
HTTP_TIMEOUT = 5.0  # seconds per request
CLI_TIMEOUT = 60.0  # seconds per clipmix-admin call


def log(msg: str) -> None:
    print(f"demo_key: {msg}", file=sys.stderr, flush=True)


def gateway_base() -> str:
    host = os.environ.get("CLIPMIX_HOST", "127.0.0.1") or "127.0.0.1"
    if host == "0.0.0.0":  # noqa: S104 - a wildcard bind is probed on loopback
        host = "127.0.0.1"
    elif host in ("::", "[::]"):
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = os.environ.get("CLIPMIX_GATEWAY_PORT", "8080")
    return f"http://{host}:{port}"


def key_status(secret: str) -> int | None:
    """HTTP status of an authenticated GET for a job that does not exist (None: no answer)."""
    url = f"{gateway_base()}/api/v1/jobs/job_doesnotexist"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {secret}"})  # noqa: S310
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=HTTP_TIMEOUT) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError as exc:
        log(f"gateway at {gateway_base()} did not answer: {getattr(exc, 'reason', exc)}")
        return None


def admin_cli() -> str:
    sibling = Path(sys.executable).with_name("clipmix-admin")
    if sibling.exists():
        return str(sibling)
    found = shutil.which("clipmix-admin")
    if found:
        return found
    raise SystemExit("demo_key: clipmix-admin not found (run 'make install')")


def run_admin(*args: str) -> dict[str, Any]:
    cmd = [admin_cli(), *args]
    shown = " ".join(["clipmix-admin", *args])
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            cmd,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SystemExit(f"demo_key: '{shown}' did not finish within {CLI_TIMEOUT:.0f}s") from None
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"demo_key: '{shown}' failed with exit status {proc.returncode}")
    return parse_json_output(proc.stdout, shown)


def parse_json_output(out: str, shown: str) -> dict[str, Any]:
    """The CLI prints one JSON object; tolerate stray lines around it."""
    candidates = [out.strip()] + [ln.strip() for ln in reversed(out.splitlines())]
    for text in candidates:
        if not text.startswith("{"):
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise SystemExit(f"demo_key: '{shown}' printed no JSON object on stdout")


def load() -> dict[str, Any] | None:
    try:
        data = json.loads(DEMO_FILE.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log(f"ignoring unreadable {DEMO_FILE.relative_to(ROOT)}: {exc}")
        return None
    if not isinstance(data, dict) or not str(data.get("secret", "")).startswith("sk_"):
        log(f"ignoring {DEMO_FILE.relative_to(ROOT)}: no key in it")
        return None
    return data


def save(data: dict[str, Any]) -> None:
    DEMO_FILE.parent.mkdir(parents=True, exist_ok=True)
    tmp = DEMO_FILE.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, DEMO_FILE)


def create() -> dict[str, Any]:
    account = run_admin("accounts", "create", "--name", "Demo account")
    account_id = str(account.get("id", ""))
    if not account_id:
        raise SystemExit("demo_key: 'clipmix-admin accounts create' returned no id")
    key = run_admin("keys", "create", "--account", account_id, "--mode", "test", "--name", "demo")
    secret = str(key.get("secret", ""))
    if not secret.startswith("sk_test_"):
        raise SystemExit("demo_key: 'clipmix-admin keys create' returned no sk_test_ secret")
    data = {
        "account_id": account_id,
        "key_id": key.get("id"),
        "display": key.get("display"),
        "secret": secret,
        "gateway": gateway_base(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    save(data)
    log(f"created demo account {account_id} and test key {key.get('id')}; saved in .run/demo.json")
    return data


def main() -> int:
    data = load()
    if data is not None:
        status = key_status(str(data["secret"]))
        if status == 404:
            log(f"demo key {data.get('key_id', '')} still works (kept in .run/demo.json)")
            print(data["secret"])
            return 0
        if status is None:
            log("cannot check the saved key: is the suite up? ('make up')")
            return 1
        if status not in (401, 403):
            # Authentication comes first, so anything but 401/403 means the key was accepted.
            log(f"warning: the saved key answered HTTP {status} (expected 404); keeping it")
            print(data["secret"])
            return 0
        log(f"saved demo key is no longer accepted (HTTP {status}); creating a new one")
    data = create()
    status = key_status(str(data["secret"]))
    if status != 404:
        log(f"warning: the new key answered HTTP {status} instead of 404 on a missing job")
    print(data["secret"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
