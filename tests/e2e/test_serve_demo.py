"""`collectguard serve --demo` (the README's first command) on an empty database: the demo is seeded,
today's daily run fills the work queue and prices the capped loans, and the pages answer."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_demo_opens_on_a_filled_queue(tmp_path):
    db, port = tmp_path / "demo.db", _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTGUARD_")}
    env.update(COLLECTGUARD_DATABASE_URL=f"sqlite:///{db}", COLLECTGUARD_LOG_LEVEL="WARNING")
    server = subprocess.Popen([sys.executable, "-m", "collectguard", "serve", "--demo", "--port", str(port)],
                              env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(1)
        for path in ("/", "/self-check", "/portal"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                assert r.status == 200 and "合规催收平台" in r.read().decode("utf-8")
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "daily run" in err and "queued actions" in err
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT COUNT(*) FROM work_item").fetchone()[0] > 0
        priced = con.execute("SELECT COUNT(*), COUNT(apr) FROM loan WHERE lender_type IN ('private', 'unlicensed')")
        total, with_apr = priced.fetchone()
        assert total > 0 and with_apr == total
    finally:
        con.close()
