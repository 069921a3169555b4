"""A DUMMY model with hand-set weights whose prediction is known in advance."""

import numpy as np

from coreLib import models


def channel_vote_dummy(seq_len: int, image_dim: int, num_classes: int = 3,
                       gain: float = 50.0):
    """DUMMY whose conv copies colour channel c to filter c and whose Dense sums
    filter k over the window into logit k (k < 3): the brightest channel wins, and
    with a large ``gain`` the softmax is about one-hot for a 2:1 majority.

    Returns:
        ``keras.Model``: ``(B, seq_len, image_dim, image_dim, 3)`` -> ``(B, num_classes)``.
    """
    model = models.build_model("DUMMY", seq_len, image_dim, 3, num_classes)
    conv, dense = model.get_layer("conv"), model.get_layer(models.OUTPUT_LAYER_NAME)
    kernel = np.zeros(conv.kernel.shape, np.float32)
    for channel in range(3):
        kernel[1, 1, 1, channel, channel] = 1.0
    conv.set_weights([kernel, np.zeros(conv.bias.shape, np.float32)])
    weights = np.zeros((seq_len, image_dim, image_dim, models.DUMMY_FILTERS, num_classes),
                       np.float32)
    for channel in range(min(3, num_classes)):
        weights[..., channel, channel] = gain / (seq_len * image_dim * image_dim)
    dense.set_weights([weights.reshape(-1, num_classes), np.zeros(num_classes, np.float32)])
    return model
