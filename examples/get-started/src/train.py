"""Stage `train`: logistic regression by full-batch gradient descent (numpy) -> models/model.json."""

from __future__ import annotations

import numpy as np
import pandas as pd

from common import ROOT, load_params, write_json


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def fit(x: np.ndarray, y: np.ndarray, *, lr: float, epochs: int, l2: float, seed: int) -> np.ndarray:
    """Weights (bias first) minimising the L2-penalised log loss."""
    x1 = np.hstack([np.ones((len(x), 1)), x])
    w = np.random.default_rng(seed).normal(0.0, 0.01, x1.shape[1])
    penalty = np.r_[0.0, np.ones(x.shape[1])]  # the bias is not penalised
    for _ in range(epochs):
        grad = x1.T @ (sigmoid(x1 @ w) - y) / len(y) + l2 * penalty * w
        w -= lr * grad
    return w


def main() -> None:
    params = load_params("train")
    train = pd.read_csv(ROOT / "data" / "features" / "train.csv")
    x, y = train.drop(columns="churn").to_numpy(), train["churn"].to_numpy(dtype=float)
    w = fit(x, y, lr=params["lr"], epochs=params["epochs"], l2=params["l2"], seed=params["seed"])
    names = ["bias", *train.columns.drop("churn")]
    model = {"weights": {name: round(float(v), 8) for name, v in zip(names, w)}}
    write_json(ROOT / "models" / "model.json", model)
    print(f"train: {len(names)} weights after {params['epochs']} epochs at lr={params['lr']}")


if __name__ == "__main__":
    main()
