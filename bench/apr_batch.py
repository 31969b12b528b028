"""Throughput of the APR: vectorised ``apr_batch`` on 1M random loans, scalar ``compute_apr`` on 10k.

Usage: .venv/bin/python bench/apr_batch.py [--loans 1000000] [--scalar 10000] [--seed 7]
Prints one JSON object: loans per second for the batch (regular schedules, and schedules with an
odd first period given by dates) and for the scalar function, with the machine's CPU count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from collectguard.domain.apr import Loan, Payment, add_months, apr_batch, compute_apr

UNITS = np.array(["month", "week", "2weeks", "semimonth", "quarter"])


def random_loans(n: int, seed: int) -> dict[str, np.ndarray]:
    """Consumer-loan-like portfolio: 500-50,000 yuan, 0-30% upfront fees, 1-60 installments."""
    rng = np.random.default_rng(seed)
    advance = rng.integers(500_00, 50_000_00, n)
    fees = (advance * rng.uniform(0, 0.3, n)).astype(np.int64)
    count = rng.integers(1, 61, n)
    amount = (advance * rng.uniform(1.0, 1.8, n) / count).astype(np.int64) + 1
    start = np.datetime64("2023-01-01") + rng.integers(0, 900, n)
    return {"advance": advance, "upfront_fees": fees, "count": count, "amount": amount,
            "unit_period": UNITS[rng.integers(0, len(UNITS), n)], "advance_date": start,
            "first_date": start + rng.integers(5, 45, n)}


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--scalar", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    loans = random_loans(args.loans, args.seed)
    regular = {k: v for k, v in loans.items() if k not in ("advance_date", "first_date")}
    t_regular = timed(lambda: apr_batch(**regular))
    t_dated = timed(lambda: apr_batch(**loans))

    monthly = random_loans(args.scalar, args.seed + 1)
    scalar_loans = [
        Loan(Decimal(int(a)).scaleb(-2), date(2024, 1, 1),
             tuple(Payment(add_months(date(2024, 1, 1) + timedelta(days=int(d) % 20), k + 1),
                           Decimal(int(p)).scaleb(-2)) for k in range(int(c))),
             Decimal(int(f)).scaleb(-2))
        for a, f, c, p, d in zip(monthly["advance"], monthly["upfront_fees"], monthly["count"],
                                 monthly["amount"],
                                 (monthly["first_date"] - monthly["advance_date"]).astype(int),
                                 strict=True)
    ]
    t_scalar = timed(lambda: [compute_apr(loan) for loan in scalar_loans])

    print(json.dumps({
        "benchmark": "apr",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "batch_regular": {"loans": args.loans, "seconds": round(t_regular, 3),
                          "loans_per_s": round(args.loans / t_regular)},
        "batch_odd_first_period": {"loans": args.loans, "seconds": round(t_dated, 3),
                                   "loans_per_s": round(args.loans / t_dated)},
        "scalar_monthly": {"loans": args.scalar, "seconds": round(t_scalar, 3),
                           "loans_per_s": round(args.scalar / t_scalar)},
    }))


if __name__ == "__main__":
    main()
