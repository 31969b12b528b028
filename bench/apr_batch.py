"""Throughput of the APR: vectorised ``apr_batch`` on 1M random loans, ``apr_matrix`` (any dated
schedule: what ``costs price`` runs) on 1M, scalar ``compute_apr`` on 10k; all in memory.

Usage: .venv/bin/python bench/apr_batch.py [--loans 1000000] [--scalar 10000] [--seed 7]
Prints one JSON object: loans per second for the batch (regular schedules, and schedules with an
odd first period given by dates), for the matrix method (6 installments due every 30 days from a
random disbursement date, as in bench/daily.py: odd first periods and mixed unit-periods, priced
in blocks of 2^19 cells as ``services.costs`` does) and for the scalar function, with the CPU
seconds of each and the machine's CPU count and 1-minute load.
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
from collectguard.domain.apr_matrix import apr_matrix

UNITS = np.array(["month", "week", "2weeks", "semimonth", "quarter"])


def random_loans(n: int, seed: int) -> dict[str, np.ndarray]:
    """Consumer-loan-like portfolio: 500-50,000 yuan, 0-30% upfront fees, 1-60 installments."""
    rng = np.random.default_rng(seed)
    advance = rng.integers(500_00, 50_000_00, n)
    fees = (advance * rng.uniform(0, 0.3, n)).astype(np.int64)
    count = rng.integers(1, 61, n)
    amount = (advance * rng.uniform(1.0, 1.8, n) / count).astype(np.int64) + 1
    start = np.datetime64("2023-01-01") + rng.integers(0, 900, n)
    return {
        "advance": advance,
        "upfront_fees": fees,
        "count": count,
        "amount": amount,
        "unit_period": UNITS[rng.integers(0, len(UNITS), n)],
        "advance_date": start,
        "first_date": start + rng.integers(5, 45, n),
    }


CPU: dict[str, float] = {}


def timed(fn, name: str = "") -> float:
    t, cpu = time.perf_counter(), time.process_time()
    fn()
    CPU[name] = round(time.process_time() - cpu, 3)
    return time.perf_counter() - t


def matrix_loans(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """bench/daily.py's shape: 6 installments 30 days apart, the first 30 days after disbursement."""
    rng = np.random.default_rng(seed)
    principal = rng.integers(1_000_00, 10_000_00, n)
    advance = (np.datetime64("2025-03-03") + rng.integers(0, 400, n)).astype(np.int64)
    dates = advance[:, None] + 30 * np.arange(1, 7)
    amounts = np.repeat((principal // 6 + principal // 50)[:, None], 6, axis=1).astype(np.float64) / 100
    amounts[:, 0] += 5.0
    return advance, principal / 100, dates, amounts


def run_matrix(advance, financed, dates, amounts, block: int = 1 << 19) -> None:
    step = block // dates.shape[1]
    valid = np.ones((step, dates.shape[1]), dtype=bool)
    for k in range(0, len(advance), step):
        part = slice(k, k + step)
        apr_matrix(advance[part], financed[part], dates[part], amounts[part], valid[: len(advance[part])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--scalar", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    loans = random_loans(args.loans, args.seed)
    regular = {k: v for k, v in loans.items() if k not in ("advance_date", "first_date")}
    t_regular = timed(lambda: apr_batch(**regular), "regular")
    t_dated = timed(lambda: apr_batch(**loans), "dated")
    matrix = matrix_loans(args.loans, args.seed)
    t_matrix = timed(lambda: run_matrix(*matrix), "matrix")

    monthly = random_loans(args.scalar, args.seed + 1)
    scalar_loans = [
        Loan(
            Decimal(int(a)).scaleb(-2),
            date(2024, 1, 1),
            tuple(
                Payment(add_months(date(2024, 1, 1) + timedelta(days=int(d) % 20), k + 1), Decimal(int(p)).scaleb(-2))
                for k in range(int(c))
            ),
            Decimal(int(f)).scaleb(-2),
        )
        for a, f, c, p, d in zip(
            monthly["advance"],
            monthly["upfront_fees"],
            monthly["count"],
            monthly["amount"],
            (monthly["first_date"] - monthly["advance_date"]).astype(int),
            strict=True,
        )
    ]
    t_scalar = timed(lambda: [compute_apr(loan) for loan in scalar_loans], "scalar")

    print(
        json.dumps(
            {
                "benchmark": "apr",
                "cpus": os.cpu_count(),
                "load_average_1min": os.getloadavg()[0],
                "python": platform.python_version(),
                "numpy": np.__version__,
                "batch_regular": {
                    "loans": args.loans,
                    "seconds": round(t_regular, 3),
                    "cpu_seconds": CPU["regular"],
                    "loans_per_s": round(args.loans / t_regular),
                },
                "batch_odd_first_period": {
                    "loans": args.loans,
                    "seconds": round(t_dated, 3),
                    "cpu_seconds": CPU["dated"],
                    "loans_per_s": round(args.loans / t_dated),
                },
                "matrix_dated_6_installments": {
                    "loans": args.loans,
                    "seconds": round(t_matrix, 3),
                    "cpu_seconds": CPU["matrix"],
                    "loans_per_s": round(args.loans / t_matrix),
                },
                "scalar_monthly": {
                    "loans": args.scalar,
                    "seconds": round(t_scalar, 3),
                    "cpu_seconds": CPU["scalar"],
                    "loans_per_s": round(args.scalar / t_scalar),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
