"""Predictions of a net from its outputs: probabilities and labels."""

__all__ = ["predict_proba", "predict"]


def predict_proba(net, X):
    """Sigmoid or softmax outputs, shape ``(n_out, batch)``."""
    if net.output == "identity":
        raise ValueError("output: predict_proba needs output='sigmoid' or 'softmax', got 'identity'")
    return net.forward(X)


def predict(net, X):
    """Predictions: int labels ``(batch,)`` for softmax, 0/1 ``(n_out, batch)``
    for sigmoid, the output itself for identity."""
    out, xp = net.forward(X), net.backend.xp
    if net.output == "softmax":
        return xp.argmax(out, axis=0)
    if net.output == "sigmoid":
        return xp.astype(out > 0.5, xp.int64)
    return out
