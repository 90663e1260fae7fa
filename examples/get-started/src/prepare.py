"""Stage `prepare`: shuffle data/raw.csv and split it into data/prepared/{train,test}.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd

from common import ROOT, load_params, write_csv


def main() -> None:
    params = load_params("prepare")
    raw = pd.read_csv(ROOT / "data" / "raw.csv")
    order = np.random.default_rng(params["seed"]).permutation(len(raw))
    n_test = int(round(len(raw) * params["split"]))
    test, train = raw.iloc[order[:n_test]], raw.iloc[order[n_test:]]
    out = ROOT / "data" / "prepared"
    write_csv(train, out / "train.csv")
    write_csv(test, out / "test.csv")
    print(f"prepare: {len(train)} training rows, {len(test)} test rows")


if __name__ == "__main__":
    main()
