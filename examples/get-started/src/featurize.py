"""Stage `featurize`: one-hot plan, optional pairwise products, standardization -> data/features/."""

from __future__ import annotations

from itertools import combinations_with_replacement

import pandas as pd

from common import ROOT, load_params, write_csv

NUMERIC = ("age", "tenure_months", "monthly_charges", "support_calls")
PLANS = ("basic", "plus", "pro")


def features(frame: pd.DataFrame, degree: int) -> pd.DataFrame:
    """Model inputs of one split (the label column `churn` comes last)."""
    out = pd.DataFrame({name: frame[name].astype(float) for name in NUMERIC})
    if degree >= 2:
        for a, b in combinations_with_replacement(NUMERIC, 2):
            out[f"{a}*{b}"] = out[a] * out[b]
    for plan in PLANS:
        out[f"plan={plan}"] = (frame["plan"] == plan).astype(float)
    out["churn"] = frame["churn"].to_numpy()
    return out


def main() -> None:
    params = load_params("featurize")
    prepared = ROOT / "data" / "prepared"
    train = features(pd.read_csv(prepared / "train.csv"), params["degree"])
    test = features(pd.read_csv(prepared / "test.csv"), params["degree"])
    if params["standardize"]:
        columns = [c for c in train.columns if c != "churn"]
        mean, std = train[columns].mean(), train[columns].std(ddof=0).replace(0.0, 1.0)
        train[columns] = (train[columns] - mean) / std
        test[columns] = (test[columns] - mean) / std
    out = ROOT / "data" / "features"
    write_csv(train, out / "train.csv")
    write_csv(test, out / "test.csv")
    print(f"featurize: {train.shape[1] - 1} features")


if __name__ == "__main__":
    main()
