"""Generate the raw data: a deterministic, synthetic customer-churn table (data/raw.csv).

Run it once before `pipe add data/raw.csv`; the same seed always gives byte-identical output.
    python src/generate.py [--rows 2000] [--seed 42]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from common import ROOT, write_csv

PLANS = ("basic", "plus", "pro")


def generate(rows: int, seed: int) -> pd.DataFrame:
    """Customers with a churn label drawn from a known (non-linear) logistic model."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    tenure = rng.gamma(2.0, 12.0, rows).round(1)
    monthly = rng.normal(55.0, 18.0, rows).clip(5, None).round(2)
    calls = rng.poisson(1.5, rows)
    plan = rng.choice(PLANS, rows, p=[0.5, 0.3, 0.2])
    plan_effect = np.select([plan == "basic", plan == "plus"], [0.6, 0.0], -0.7)
    logit = (
        -1.2
        - 0.045 * (tenure - 24)
        + 0.03 * (monthly - 55)
        + 0.55 * calls
        + plan_effect
        + 0.0012 * (age - 45) * (monthly - 55)  # an interaction only degree-2 features can see
    )
    churn = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer": np.arange(1, rows + 1),
            "age": age,
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "support_calls": calls,
            "plan": plan,
            "churn": churn.astype(int),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    frame = generate(args.rows, args.seed)
    write_csv(frame, ROOT / "data" / "raw.csv")
    print(f"wrote data/raw.csv: {len(frame)} rows, churn rate {frame['churn'].mean():.3f}")


if __name__ == "__main__":
    main()
