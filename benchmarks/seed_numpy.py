"""Seed 000's training loop as the original write-up codes it in plain NumPy (minus signs restored).

A peer for the benchmarks and a reference for the tests: it is written independently of xpnet.
"""

from __future__ import annotations

import numpy as np


def calculate_loss(model, X, y, reg_lambda=0.01):
    W1, b1, W2, b2 = model["W1"], model["b1"], model["W2"], model["b2"]
    z1 = X.dot(W1) + b1
    a1 = np.tanh(z1)
    z2 = a1.dot(W2) + b2
    exp_scores = np.exp(z2)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    data_loss = np.sum(-np.log(probs[range(len(X)), y]))
    data_loss += reg_lambda / 2 * (np.sum(np.square(W1)) + np.sum(np.square(W2)))
    return 1.0 / len(X) * data_loss


def initial_model(nn_input_dim, nn_hdim, nn_output_dim=2, dtype=np.float64):
    """The seed's weights: ``np.random.seed(0)``, randn / sqrt(fan-in), zero biases."""
    np.random.seed(0)
    W1 = np.random.randn(nn_input_dim, nn_hdim) / np.sqrt(nn_input_dim)
    b1 = np.zeros((1, nn_hdim))
    W2 = np.random.randn(nn_hdim, nn_output_dim) / np.sqrt(nn_hdim)
    b2 = np.zeros((1, nn_output_dim))
    return {k: v.astype(dtype) for k, v in {"W1": W1, "b1": b1, "W2": W2, "b2": b2}.items()}


def train(model, X, y, num_passes, epsilon=0.01, reg_lambda=0.01, print_every=1000):
    """The seed's loop, updating ``model`` in place (any number of classes and float dtype).
    Returns [(pass, loss)] every ``print_every`` passes (0: never)."""
    num_examples = len(X)
    W1, b1, W2, b2 = model["W1"], model["b1"], model["W2"], model["b2"]
    printed = []
    for i in range(0, num_passes):
        z1 = X.dot(W1) + b1
        a1 = np.tanh(z1)
        z2 = a1.dot(W2) + b2
        exp_scores = np.exp(z2)
        probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
        delta3 = probs
        delta3[range(num_examples), y] -= 1
        dW2 = (a1.T).dot(delta3)
        db2 = np.sum(delta3, axis=0, keepdims=True)
        delta2 = delta3.dot(W2.T) * (1 - np.power(a1, 2))
        dW1 = np.dot(X.T, delta2)
        db1 = np.sum(delta2, axis=0)
        dW2 += reg_lambda * W2
        dW1 += reg_lambda * W1
        W1 += -epsilon * dW1
        b1 += -epsilon * db1
        W2 += -epsilon * dW2
        b2 += -epsilon * db2
        if print_every and i % print_every == 0:
            printed.append((i, calculate_loss(model, X, y, reg_lambda)))
    return printed


def build_model(X, y, nn_hdim, num_passes=20000, epsilon=0.01, reg_lambda=0.01, print_every=1000):
    """Return (model, printed) where printed is [(pass, loss)] every ``print_every`` passes."""
    model = initial_model(X.shape[1], nn_hdim)
    printed = train(model, X, y, num_passes, epsilon, reg_lambda, print_every)
    return model, printed


if __name__ == "__main__":
    import sklearn.datasets

    np.random.seed(0)
    X, y = sklearn.datasets.make_moons(200, noise=0.20)
    model, printed = build_model(X, y, 3)
    for i, loss in printed:
        print("Loss after iteration %i: %f" % (i, loss))
