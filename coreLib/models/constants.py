"""Training defaults shared by every model builder (TensorFlow-free).

One place for the regularisation and BatchNorm defaults, so that the 2019 models
(:mod:`coreLib.models`) and CausalMobileNet (:mod:`coreLib.models.streaming`) agree
without importing each other.
"""

L2_FACTOR = 1e-4
DROPOUT_RATE = 0.2
# Keras' default, as the 2019 tool (Keras 2) trained with. Short runs (the demo's
# few hundred steps) want 0.9: the moving statistics used at inference then
# follow the quickly changing weights instead of lagging behind them.
BN_MOMENTUM = 0.99
