"""The TypeScript SDK (sdk/js) against the running suite, driven by Node's own test runner.

The fixtures build the package (``npm ci`` when node_modules is missing, then ``npm run
build``), create the keys the Node tests need, and let the webhooks service deliver to
receivers on 127.0.0.1. ``node --test`` then runs the SDK's unit tests and its integration
tests (``sdk/js/test/e2e``), which read the suite's URL and the keys from ``CLIPMIX_E2E_*``.
A second run stops billing to meet real 5xx answers; a third executes the README quickstart.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.suite import Suite
from tests.infra import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "js"
NPM_TIMEOUT = 240
BUILD_TIMEOUT = 120
NODE_TIMEOUT = 150

# One Python process creates every account and key (each clipmix-admin run would start a
# Python of its own). Printed as one JSON object: CLIPMIX_E2E_<NAME> -> key secret.
_KEYS_SCRIPT = r"""
import contextlib, io, json
from services.admin.cli import main

def admin(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(list(args))
    return json.loads(out.getvalue())

def account(name):
    return admin("accounts", "create", "--name", name)["id"]

def key(acct, mode, *options):
    return admin("keys", "create", "--account", acct, "--mode", mode, *options)["secret"]

def funded(name, usd):
    acct = account(name)
    admin("credits", "purchase", "--account", acct, "--usd", str(usd), "--reference", acct)
    return key(acct, "live")

main_account = account("sdk-js")
print(json.dumps({
    "TEST_KEY": key(main_account, "test"),
    "WEBHOOK_KEY": key(main_account, "test"),
    "LIMITED_KEY": key(main_account, "test", "--rate-limit", "1", "--burst", "1"),
    "OTHER_KEY": key(account("sdk-js-other"), "test"),
    "DROP_KEY": key(account("sdk-js-drop"), "test"),
    "QUICKSTART_KEY": key(account("sdk-js-quickstart"), "test"),
    "EVENTS_KEY": key(account("sdk-js-events"), "test"),
    "TOOLS_KEY": key(account("sdk-js-tools"), "test"),
    "RESTRICTED_KEY": key(main_account, "test", "--restricted", "jobs=read,webhook=read,wallet=read"),
    "LIVE_KEY": funded("sdk-js-live", 100),
    "POOR_LIVE_KEY": funded("sdk-js-poor", 1),
    "ISSUE19_LIVE_KEY": funded("sdk-js-issue19", 100),
    # Its own account: the other tests' wait() calls hold streams of TEST_KEY (5 per key).
    "STREAM_KEY": key(account("sdk-js-stream"), "test"),
    "UNFUNDED_LIVE_KEY": key(account("sdk-js-unfunded"), "live"),
}))
"""


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CLIPMIX_SKIP_JS") == "1":
            pytest.skip("node is not on PATH and CLIPMIX_SKIP_JS=1")
        pytest.fail(
            "node (>= 18) is not on PATH: the TypeScript SDK's tests need it. Install Node.js,"
            " or set CLIPMIX_SKIP_JS=1 to skip them knowingly."
        )
    return node


def _run(args: list[str], timeout: float) -> None:
    done = subprocess.run(
        args, cwd=SDK, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def built_sdk() -> Path:
    """sdk/js installed from its lock file (if needed) and built (ESM + CommonJS)."""
    _node()
    npm = shutil.which("npm")
    assert npm is not None, "npm is not on PATH (it ships with Node.js)"
    if not (SDK / "node_modules" / ".bin" / "tsc").exists():
        _run([npm, "ci", "--no-audit", "--no-fund"], NPM_TIMEOUT)
    _run([npm, "run", "build"], BUILD_TIMEOUT)
    return SDK


@pytest.fixture(scope="module")
def keys(suite: Suite) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", _KEYS_SCRIPT],
        cwd=ROOT,
        env=suite.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _node_env(suite: Suite, keys: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPMIX_")}
    env.update({f"CLIPMIX_E2E_{name}": secret for name, secret in keys.items()})
    env.update(CLIPMIX_E2E_BASE_URL=suite.gateway, NO_COLOR="1", **extra)
    return env


async def _node_test(files: list[Path], env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        _node(),
        "--test",
        "--test-concurrency=4",
        "--test-reporter=spec",
        *(str(f.relative_to(SDK)) for f in files),
        cwd=SDK,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), NODE_TIMEOUT)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        pytest.fail(f"node --test ran past {NODE_TIMEOUT} s:\n{out.decode(errors='replace')}")
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def _test_files(sdk: Path) -> list[Path]:
    """Unit tests and integration tests, but not the one that needs billing stopped."""
    unit = sorted([*sdk.glob("test/*.test.mjs"), *sdk.glob("test/*.test.cjs")])
    e2e = sorted(sdk.glob("test/e2e/*.test.mjs"))
    return unit + [p for p in e2e if p.name != "server-errors.test.mjs"]


def _counts(output: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^\u2139 (\w+) (\d+)$", output, re.M)}


@pytest.mark.timeout(300)
async def test_js_sdk_unit_and_integration_tests(
    suite: Suite, built_sdk: Path, keys: dict[str, str]
) -> None:
    code, output = await _node_test(_test_files(built_sdk), _node_env(suite, keys))
    print(output)  # shown with -s / -rP
    counts = _counts(output)
    assert code == 0, output
    assert counts.get("fail") == 0 and counts.get("skipped") == 0, output
    assert counts.get("pass", 0) >= 70, output  # the integration tests did run, not skip


@pytest.mark.timeout(120)
async def test_js_sdk_meets_real_server_errors(
    suite: Suite, built_sdk: Path, keys: dict[str, str]
) -> None:
    billing = suite.processes["billing"]
    billing.terminate()
    try:
        code, output = await _node_test(
            [built_sdk / "test" / "e2e" / "server-errors.test.mjs"],
            _node_env(suite, keys, CLIPMIX_E2E_BILLING_DOWN="1"),
        )
    finally:
        billing.start()
        await billing.wait_ready()
    assert code == 0, output
    assert _counts(output).get("pass") == 2, output


def _quickstart_blocks() -> list[str]:
    readme = (SDK / "README.md").read_text()
    section = readme.split("\n## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```js\n(.*?)```", section, re.S)


def _quickstart_project(directory: Path, sdk: Path) -> None:
    """A project that installed the package (node_modules/clipmix is the built SDK), holding
    the README's quickstart blocks as files."""
    create_and_wait, receiver = _quickstart_blocks()
    (directory / "node_modules").mkdir()
    (directory / "node_modules" / "clipmix").symlink_to(sdk, target_is_directory=True)
    (directory / "quickstart.mjs").write_text(create_and_wait)
    (directory / "receiver.mjs").write_text(receiver)


async def _line_with(stream: asyncio.StreamReader, needle: str, timeout: float) -> str:
    seen: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while line := (await stream.readline()).decode():
                seen.append(line)
                if needle in line:
                    return line
    except TimeoutError:
        pass
    pytest.fail(f"no line with {needle!r} from the receiver; it printed:\n{''.join(seen)}")


@pytest.mark.timeout(180)
async def test_readme_quickstart_runs_as_written(
    suite: Suite,
    built_sdk: Path,
    keys: dict[str, str],
    tmp_path: Path,
) -> None:
    _quickstart_project(tmp_path, built_sdk)
    secret_key = keys["QUICKSTART_KEY"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPMIX_")}
    env.update(CLIPMIX_API_KEY=secret_key, CLIPMIX_BASE_URL=suite.gateway)

    ran = await asyncio.create_subprocess_exec(
        _node(),
        "quickstart.mjs",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out = (await asyncio.wait_for(ran.communicate(), 60))[0].decode(errors="replace")
    except TimeoutError:
        ran.kill()
        await ran.wait()
        pytest.fail("the quickstart ran past 60 s")
    assert ran.returncode == 0, out
    assert "song: http" in out, out

    port = free_port()
    auth = {"Authorization": f"Bearer {secret_key}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        hook = {"url": f"http://127.0.0.1:{port}/webhooks"}
        async with http.put(f"{suite.gateway}/api/v1/webhook", json=hook, headers=auth) as r:
            assert r.status == 201, await r.text()
            secret = (await r.json())["secret"]
        proc = await asyncio.create_subprocess_exec(
            _node(),
            "receiver.mjs",
            cwd=tmp_path,
            env={**env, "CLIPMIX_WEBHOOK_SECRET": secret, "PORT": str(port)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            assert proc.stdout is not None
            await _listening(port)
            song = {"prompt": "a song for the receiver", "duration_seconds": 5}
            async with http.post(f"{suite.gateway}/api/v1/music", json=song, headers=auth) as r:
                assert r.status == 201, await r.text()
                job_id = (await r.json())["id"]
            line = await _line_with(proc.stdout, job_id, timeout=20)
            assert line.startswith("verified job.completed"), line
            # A forged delivery is answered 400 by the same code.
            forged = {"webhook-id": "evt_x", "webhook-timestamp": "1", "webhook-signature": "v1,x"}
            async with http.post(hook["url"], data=b"{}", headers=forged) as r:
                assert r.status == 400
            await _line_with(proc.stdout, "refused", timeout=10)
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)


async def _listening(port: int, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
