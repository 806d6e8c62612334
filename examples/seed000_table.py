"""Seed 000: a 4 -> 6 sigmoid -> 4 tanh -> 3 relu -> 1 sigmoid network.

Trained with binary cross-entropy and full-batch gradient descent for 100
epochs on scikit-learn's ``make_classification`` (10 samples, 4 features),
then prints the predicted/true table the seed program printed. The seed
summed the BCE gradient over the 10 samples with lr 0.01; mlpckpt's losses
are mean-reduced, so the equivalent learning rate is 0.1
(paper_notes/backprop.md, "Mean reduction and the learning rate").

Run: ``python examples/seed000_table.py`` (needs scikit-learn).
"""

import numpy as np
from sklearn.datasets import make_classification

import mlpckpt as mc


def main(data_seed=42, net_seed=2, epochs=100, lr=0.1):
    """Train, print the loss and the table; return (history, proba, y)."""
    X, y = make_classification(
        n_samples=10, n_features=4, n_classes=2, n_clusters_per_class=1, random_state=data_seed
    )
    X = X.T  # mlpckpt is column-major: one sample per column
    net = mc.MLP(
        [4, 6, 4, 3, 1],
        activation=["sigmoid", "tanh", "relu"],
        output="sigmoid",
        init="normal",  # randn / sqrt(fan_in), as the seeds
        seed=net_seed,
    )
    history = net.fit(X, y, loss="bce", epochs=epochs, batch_size=None, lr=lr, shuffle=False)
    proba = net.predict_proba(X)[0]
    print(f"bce loss: {history[0]:.6f} (epoch 1) -> {history[-1]:.6f} (epoch {len(history)})")
    print(f"{'example':>7}  {'predicted':>9}  {'true':>4}")
    for i, (p, t) in enumerate(zip(proba, y)):
        print(f"{i:>7}  {p:>9.6f}  {float(t):>4.1f}")
    print(f"accuracy: {np.mean((proba > 0.5) == y):.2f}")
    return history, proba, y


if __name__ == "__main__":
    main()
