"""Stage `evaluate`: score the test set -> metrics.json (accuracy, auc, log loss) and plots/roc.csv."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from common import ROOT, load_params, write_csv, write_json


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive scores above a random negative."""
    ranks = pd.Series(p).rank().to_numpy()
    positives = y.sum()
    negatives = len(y) - positives
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def roc(y: np.ndarray, p: np.ndarray, points: int) -> pd.DataFrame:
    """False and true positive rates at `points` evenly spaced thresholds."""
    rows = []
    for t in np.linspace(1.0, 0.0, points):
        predicted = p >= t
        rows.append(
            {
                "threshold": round(float(t), 4),
                "fpr": float((predicted & (y == 0)).sum() / max((y == 0).sum(), 1)),
                "tpr": float((predicted & (y == 1)).sum() / max((y == 1).sum(), 1)),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    params = load_params("evaluate")
    model = json.loads((ROOT / "models" / "model.json").read_text(encoding="utf-8"))["weights"]
    test = pd.read_csv(ROOT / "data" / "features" / "test.csv")
    y = test["churn"].to_numpy()
    x = test[[name for name in model if name != "bias"]].to_numpy()
    w = np.array([model[name] for name in model if name != "bias"])
    p = 1.0 / (1.0 + np.exp(-(model["bias"] + x @ w)))
    eps = 1e-12
    metrics = {
        "accuracy": round(float(((p >= params["threshold"]) == (y == 1)).mean()), 4),
        "auc": round(auc(y, p), 4),
        "logloss": round(float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))), 4),
        "test_rows": int(len(y)),
    }
    write_json(ROOT / "metrics.json", metrics)
    write_csv(roc(y, p, params["roc_points"]), ROOT / "plots" / "roc.csv")
    print(f"evaluate: accuracy {metrics['accuracy']}, auc {metrics['auc']}")


if __name__ == "__main__":
    main()
