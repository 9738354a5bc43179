"""How close one run's logits are to a reference run's, position by position
(the int8-weights and fp8-KV quality tests): top-1 agreement and
KL(reference || other) in nats, from [positions, vocab] float arrays."""
import numpy as np


def log_softmax(x):
    x = x.astype(np.float64)
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def compare(ref, got):
    """(top-1 agreement, per-position KL array, max |logit difference|)."""
    assert ref.shape == got.shape
    top1 = float(np.mean(ref.argmax(1) == got.argmax(1)))
    lp, lq = log_softmax(ref), log_softmax(got)
    kl = np.sum(np.exp(lp) * (lp - lq), axis=1)
    return top1, kl, float(np.abs(ref - got).max())
