"""gaia bot: a singleton worker (one consumer of a chat API), never run in two colours."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

INTERVAL = float(os.environ.get("GAIA_BOT_INTERVAL", "5"))
running = True


def stop(signum: int, frame: object) -> None:
    global running
    running = False


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    token_file = Path("/run/secrets/telegram_token")
    token_loaded = token_file.exists() and bool(token_file.read_text().strip())
    colour = os.environ.get("APP_COLOUR", "")
    version = os.environ.get("APP_VERSION", "dev")
    print(f"gaia bot {version} ({colour}) started, token loaded: {token_loaded}", flush=True)
    ticks = 0
    while running:
        ticks += 1
        print(f"gaia bot {colour} tick {ticks}", flush=True)
        deadline = time.monotonic() + INTERVAL
        while running and time.monotonic() < deadline:
            time.sleep(0.2)
    print(f"gaia bot {colour} stopped after {ticks} ticks", flush=True)


if __name__ == "__main__":
    main()
