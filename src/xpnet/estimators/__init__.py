"""scikit-learn compatible estimators: :class:`MLPClassifier` and :class:`MLPRegressor`.

The package: ``_base`` (parameters, checks, training through the trainer, predictions),
``classifier``, ``regressor`` and ``files`` (what of an estimator a model file holds).

A drop-in for ``sklearn.neural_network``'s classes: the same parameters, fitted attributes and
behaviour (``coefs_``/``intercepts_`` as lists of arrays that may be set, one logistic output for
two classes, multilabel targets, multi-output and Poisson regression, ``sample_weight``, sparse
X, ``solver="lbfgs"``, warm starts, ``partial_fit``, early stopping on the same split, the same
learning-rate schedules and the same random draws: the same seed gives the same model). They
add ``backend``, ``device`` and ``dtype``, and translate their settings into xpnet's training
engine (:mod:`xpnet.engine`): mini-batch epochs whose order is drawn on the host from
``random_state`` (the same on every backend), each epoch one compiled program on JAX;
scikit-learn's stopping rule and adaptive rate are the :class:`~xpnet.callbacks.EarlyStopping`
plug-in; L-BFGS is SciPy's, fed by xpnet's loss and gradient on the backend (:mod:`xpnet.lbfgs`).
With ``stream=True`` the data stays on the host (in memory or a memory-mapped ``.npy``) and goes
to the device a block of batches at a time, the next block sent while the current one trains
(:mod:`xpnet.stream`): data larger than device memory; sparse X is always streamed, densified a
block at a time. With ``data_parallel=True`` (JAX) each batch is split over ``devices`` devices
(default: all JAX sees) and streamed so; XLA sums the gradients across devices inside the
compiled steps: the results are those of one device. ``checkpoint``/``checkpoint_every`` save
the estimator every that many epochs; :meth:`MLPClassifier.save` and ``load`` use xpnet's model files
(no pickle), and :meth:`MLPClassifier.resume` continues an interrupted fit to the same result.
Fitted arrays are NumPy in the training dtype (``dtype``, else float32 for float32 X and float64
otherwise); ``predict`` returns arrays of the input's kind (a JAX array in, a JAX array out).
Needs scikit-learn (``pip install 'xpnet[data]'``).
"""

from xpnet.estimators._base import (
    ACTIVATION_NAMES,
    INITS,
    LEARNING_RATES,
    OUTPUT_LOSSES,
    REGRESSION_LOSSES,
    SOLVERS,
)
from xpnet.estimators.classifier import MLPClassifier
from xpnet.estimators.regressor import MLPRegressor

__all__ = [
    "ACTIVATION_NAMES",
    "INITS",
    "LEARNING_RATES",
    "OUTPUT_LOSSES",
    "REGRESSION_LOSSES",
    "SOLVERS",
    "MLPClassifier",
    "MLPRegressor",
]
