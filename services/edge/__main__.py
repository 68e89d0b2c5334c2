"""``python -m services.edge [--print]``: render the HAProxy config and run HAProxy on it in the
foreground (``--print``: write the config to stdout and exit)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from services.edge.haproxy import EdgeSettings, render


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.edge", description=__doc__)
    parser.add_argument("--print", action="store_true", help="print the config and exit")
    parser.add_argument("--config", help="where to write the config (default: a temp file)")
    args = parser.parse_args(argv)
    text = render(EdgeSettings())
    if args.print:
        sys.stdout.write(text)
        return
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(binary):
        sys.exit("edge: haproxy is not installed (Debian: apt-get install haproxy)")
    if args.config:
        path = Path(args.config)
    else:
        path = Path(tempfile.mkdtemp(prefix="clipmix-edge-")) / "haproxy.cfg"
    path.write_text(text, encoding="utf-8")
    # -db: foreground, no daemon; exec: signals (SIGTERM from honcho) reach HAProxy itself.
    os.execv(binary, [binary, "-db", "-f", str(path)])  # noqa: S606 - our own config


if __name__ == "__main__":
    main()
