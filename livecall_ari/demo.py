"""The demo: ``scripts/demo`` runs this after installing.

Sets LiveCall up, brings the sandbox up, loads a small TPS list, starts ``livecall serve``,
places two calls from the sandbox's desk phones (a service call that connects and is recorded,
a marketing call to a TPS-registered number that is blocked) and prints the decisions and the
recording LiveCall kept.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from livecall_ari import config

LIVECALL = [sys.executable, "-m", "livecall_ari.cli"]
CONNECTS = "02079460018"  # Ofcom's drama range: never a real line
ON_TPS = "02079460999"


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run(*args: str) -> str:
    result = subprocess.run([*LIVECALL, *args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"livecall {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def wait_registered(settings: config.Settings, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("livecall serve exited early; see var/demo/serve.log")
        try:
            r = httpx.get(f"{settings.ari.url}/ari/applications", auth=(settings.ari.user, settings.ari.password))
            if any(a["name"] == settings.ari.app for a in r.json()):
                return
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.2)
    sys.exit("livecall serve did not register with Asterisk in time")


def main() -> None:
    step("livecall init")
    print(run("init"), end="")
    settings = config.load()
    step("livecall sandbox up (a real Asterisk 22 and a simulated PSTN, on loopback)")
    print(run("sandbox", "up"), end="")

    step("Loading a TPS and a CTPS snapshot (one registered number)")
    today = dt.date.today().isoformat()
    with tempfile.TemporaryDirectory() as tmp:
        tps = Path(tmp) / "tps.txt"
        tps.write_bytes(f"{ON_TPS[:4]} {ON_TPS[4:]:>7}\r\n".encode())
        ctps = Path(tmp) / "ctps.txt"
        ctps.write_bytes(b"0161 4960000\r\n")
        print(run("lists", "import", "tps", str(tps), "--list-date", today), end="")
        print(run("lists", "import", "ctps", str(ctps), "--list-date", today), end="")
    print(run("lists", "status"), end="")

    step("livecall serve (the gate: ARI Stasis app and FastAGI)")
    log_path = settings.data_path().parent / "serve.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        serve = subprocess.Popen([*LIVECALL, "serve"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_registered(settings, serve)
        print(f"serving; log in {log_path}")

        step(f"Agent 1002 makes a service call to {CONNECTS}")
        print(run("sandbox", "call", CONNECTS, "--agent", "1002", "--hold", "2"), end="")
        step(f"Agent 1001 makes a marketing call to {ON_TPS} (registered with the TPS)")
        print(run("sandbox", "call", ON_TPS, "--agent", "1001"), end="")
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(10)

    step("What LiveCall decided and recorded (livecall decisions)")
    print(run("decisions"), end="")
    step("The service call's recording, with the notice the called party heard (livecall recordings list)")
    deadline = time.monotonic() + 15
    while '"state": "recording"' in run("recordings", "list", "--json") and time.monotonic() < deadline:
        time.sleep(0.3)
    print(run("recordings", "list", "--limit", "1"), end="")
    step("Done. The sandbox is still up: `livecall sandbox status`, `livecall sandbox down`.")
    print(f"(settings: {settings.path})")


if __name__ == "__main__":
    main()
