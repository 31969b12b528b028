"""The ``collectguard`` entry point: ``collectguard check [PATH|-]`` goes straight to the guard's
batch path, skipping the Typer app's start-up (the dialer integrations call it per batch); every
other command line goes to the full CLI (``collectguard.cli.main``)."""

from __future__ import annotations

import sys


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["check"] and len(args) <= 2 and all(a == "-" or not a.startswith("-") for a in args[1:]):
        from collectguard.cli.check import main as check_main

        sys.exit(check_main(args[1:]))
    from collectguard.cli.main import main as cli_main

    cli_main()
