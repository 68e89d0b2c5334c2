"""What a fresh machine needs for every test to run: scripts/ensure-test-tools.sh installs the
tools (promtool, wrk) with apt-get, and a test needing a missing one fails under CI=true."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests import tools

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ensure-test-tools.sh"
# What the script runs besides bash builtins, from wherever this machine has them.
_COMMANDS = ("sort", "timeout", "chmod", "rm")

# A stand-in for apt-get: records its arguments; "install" provides each package's tool.
_APT_GET = """#!/bin/bash
echo "$*" >> "{log}"
if [[ "$1" == install ]]; then
    for arg in "$@"; do
        case "$arg" in
        prometheus) tool=promtool ;;
        wrk) tool=wrk ;;
        haproxy) tool=haproxy ;;
        chromium) tool=chromium ;;
        *) continue ;;
        esac
        printf '#!/bin/sh\\necho %s\\n' "$tool" > "{bin}/$tool"
        chmod +x "{bin}/$tool"
    done
fi
"""


def _machine_without_the_tools(tmp_path: Path) -> tuple[Path, Path]:
    """A PATH holding only what the script needs: no promtool, no wrk; root, with apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in _COMMANDS:
        found = next(Path(d) / name for d in ("/usr/bin", "/bin") if (Path(d) / name).exists())
        (bin_dir / name).symlink_to(found)
    log = tmp_path / "apt-get.log"
    scripts = {"apt-get": _APT_GET.format(log=log, bin=bin_dir), "id": "#!/bin/sh\necho 0\n"}
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    return bin_dir, log


def test_make_test_installs_its_tools_where_they_are_missing(tmp_path: Path) -> None:
    assert "bash scripts/ensure-test-tools.sh" in (ROOT / "Makefile").read_text()
    bin_dir, log = _machine_without_the_tools(tmp_path)
    policy = tmp_path / "policy-rc.d"
    env = {"PATH": str(bin_dir), "CLIPMIX_POLICY_RC_D": str(policy), "HOME": str(tmp_path)}
    done = subprocess.run(
        ["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    installs = [line.split() for line in log.read_text().splitlines() if "install" in line]
    assert installs and {"prometheus", "wrk", "haproxy", "chromium"} <= set(installs[-1])
    assert "--no-install-recommends" in installs[-1]
    for tool in ("promtool", "wrk", "haproxy", "chromium"):
        assert (bin_dir / tool).exists(), tool
    assert not policy.exists()  # no daemon was started, and the guard is gone again
    # Run again, everything present: nothing to install.
    log.unlink()
    again = subprocess.run(
        ["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0 and not log.exists()


def test_without_apt_the_script_says_what_to_install(tmp_path: Path) -> None:
    bin_dir, _ = _machine_without_the_tools(tmp_path)
    (bin_dir / "apt-get").unlink()
    env = {"PATH": str(bin_dir), "CI": "true", "HOME": str(tmp_path)}
    done = subprocess.run(
        ["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0  # the tests themselves fail; make test still runs them all
    assert "apt-get install prometheus" in done.stderr
    assert "apt-get install wrk" in done.stderr
    assert "apt-get install haproxy" in done.stderr
    assert "FAIL" in done.stderr


def test_a_missing_tool_fails_its_test_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="promtool is not installed"):
        tools.require("promtool")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="apt-get install wrk"):
        tools.require("wrk")
    monkeypatch.setenv("PATH", os.defpath)
