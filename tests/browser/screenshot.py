"""Render the compliance page of the demo fleet and take its picture: `python -m tests.browser.screenshot FILE.png`.

Runs the demo's enforcing steps on the demo's local Azure (Azurite and the ARM emulator with the
sample fleet): verify every cluster (a drifted node is caught and reimaged), then the demo's pool
write event; then `compliance --html`, opened in headless Chromium with one pool's evidence
shown. docs/compliance.png is made this way.
"""

from __future__ import annotations

import io
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from shared.cli import main
from shared.local.demo import DEMO_EVENT, local_stack
from tests.browser.devtools import Chromium

WIDTH = 1400
OPENED = "aks-prod-weu/agentPools/system"  # the pool whose drift the demo catches: its evidence is shown


def take(picture: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="warden-compliance-") as folder:
        page = Path(folder) / "compliance.html"
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()), local_stack():
            for arguments in (["verify"], ["handle-event", str(DEMO_EVENT)], ["compliance", "--html", str(page)]):
                main(arguments)
        with Chromium(width=WIDTH) as browser:
            browser.open(page)
            browser.click(f"tr[data-pool-id$='{OPENED}'] summary")
            browser.evaluate("window.scrollTo(0, 0)")
            browser.screenshot(picture)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/compliance.png")
    take(target)
    print(f"wrote {target}")
