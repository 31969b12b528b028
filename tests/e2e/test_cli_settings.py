"""A bad COLLECTGUARD_* setting stops every CLI command with one line naming it and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(("env", "expected"), [
    ({"COLLECTGUARD_PII_KEY_ID": "not-a-number"}, "bad setting COLLECTGUARD_PII_KEY_ID"),
    ({"COLLECTGUARD_ENVIRONMENT": "production"}, "COLLECTGUARD_SECRET_KEY must be set"),
])
def test_a_bad_setting_is_one_line_and_exit_2(tmp_path, env, expected):
    base = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTGUARD_")}
    out = subprocess.run([sys.executable, "-m", "collectguard", "audit", "verify"], cwd=tmp_path,
                         env={**base, "COLLECTGUARD_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", **env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bad setting") and expected in lines[0]
    assert "Traceback" not in out.stderr and not (tmp_path / "x.db").exists()
