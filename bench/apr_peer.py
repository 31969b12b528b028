"""APR against a peer: collectguard's vectorised ``apr_batch`` and ``numpy_financial.rate`` on 1M loans.

    .venv/bin/python bench/apr_peer.py [--loans 1000000] [--seed 7]

The same random portfolio as bench/apr_batch.py (500–50,000 yuan, 0–30 % upfront fees, 1–60
equal payments, five unit periods), regular schedules (first payment one unit-period after the
advance). For such a schedule Regulation Z Appendix J's actuarial APR is the periodic rate that
solves the annuity equation times the unit-periods per year, which is what ``numpy_financial.rate``
(Newton's method, vectorised, default guess 10 % per period) computes — so the two must agree to
the cent of a percent wherever the peer converges. Prints one JSON object: seconds and loans/s
for each, how many loans agree within 0.01 percentage points, where they differ most, and how many
the peer could not solve (NaN: Newton from its default guess does not converge on very costly loans,
e.g. a 30 % fee on a one-period loan).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from apr_batch import random_loans

from collectguard.domain.apr import apr_batch

PER_YEAR = {"month": 12, "week": 52, "2weeks": 26, "semimonth": 24, "quarter": 4}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loans", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    try:
        import numpy_financial as npf
    except ImportError:
        sys.exit("numpy-financial is not installed: pip install -e '.[dev]'")

    loans = random_loans(args.loans, args.seed)
    regular = {k: v for k, v in loans.items() if k not in ("advance_date", "first_date")}
    t0 = time.perf_counter()
    ours = apr_batch(**regular)
    t_ours = time.perf_counter() - t0

    per_year = np.vectorize(PER_YEAR.__getitem__, otypes=[np.float64])(loans["unit_period"])
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):  # Newton overflows on the loans it cannot solve; they come back NaN
        periodic = npf.rate(loans["count"].astype(np.float64), -loans["amount"].astype(np.float64),
                            (loans["advance"] - loans["upfront_fees"]).astype(np.float64), 0.0)
    peer = np.round(periodic * per_year * 100, 2)
    t_peer = time.perf_counter() - t0

    solved = ~np.isnan(peer)
    diff = np.abs(ours - peer)
    agree = solved & (diff <= 0.0100001)
    worst = int(np.nanargmax(np.where(solved, diff, np.nan))) if solved.any() else -1
    print(json.dumps({
        "loans": args.loans, "seed": args.seed, "cpus": os.cpu_count(),
        "collectguard_apr_batch": {"seconds": round(t_ours, 3), "loans_per_s": round(args.loans / t_ours)},
        "numpy_financial_rate": {"seconds": round(t_peer, 3), "loans_per_s": round(args.loans / t_peer),
                                 "unsolved_nan": int((~solved).sum())},
        "speedup": round(t_peer / t_ours, 2),
        "agree_within_0_01_pp": int(agree.sum()),
        "agree_share_of_solved": round(float(agree.sum() / max(solved.sum(), 1)), 6),
        "largest_difference_pp": None if worst < 0 else {
            "difference": round(float(diff[worst]), 4), "collectguard": float(ours[worst]),
            "numpy_financial": float(peer[worst]),
            "count": int(loans["count"][worst]), "unit": str(loans["unit_period"][worst])},
        "collectguard_apr_range": [float(np.min(ours)), float(np.max(ours))],
        "load_average_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
