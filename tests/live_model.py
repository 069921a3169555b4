"""A tiny depth CausalMobileNet whose labels follow the frames, for the live tests.

Untrained, CausalMobileNet's outputs sit near 1/K whatever the frames. Its last
Dense layer is set so that they do not: the kernel is scaled until the logits
over a sequence's windows spread by about two units, and the bias is the
negative mean logit, so every class wins somewhere. Deterministic (seeded).
"""

import json
import os

import numpy as np

CLASSES = ("asl-blue", "ui-swipe", "ui-click", "no-action")
SEQ_LEN, IMAGE_DIM = 3, 16


def build_spread_model(windows: np.ndarray, seed: int = 4):
    """``windows``: ``(N, L, D, D, C)`` float32 in [0, 1] the spread is set on."""
    import keras
    from coreLib import models
    from coreLib.models import streaming
    keras.utils.set_random_seed(seed)
    model = streaming.build_causal_mobilenet(SEQ_LEN, IMAGE_DIM, windows.shape[-1],
                                             len(CLASSES))
    output = model.get_layer(models.OUTPUT_LAYER_NAME)
    features = keras.Model(model.input, output.input)(windows, training=False)
    features = np.asarray(features, np.float64)
    kernel, _ = output.get_weights()
    logits = features @ kernel
    centred = logits - logits.mean(axis=0)
    scale = 2.0 / max(float(centred.std()), 1e-12)
    output.set_weights([(kernel * scale).astype(np.float32),
                        (-logits.mean(axis=0) * scale).astype(np.float32)])
    return model


def write_model_dir(folder: str, model) -> str:
    """``CausalMobileNet.weights.h5`` and the run_config.json train.py writes."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "CausalMobileNet.weights.h5")
    model.save_weights(path)
    with open(os.path.join(folder, "run_config.json"), "w") as handle:
        json.dump({"model_name": "CausalMobileNet",
                   "window_shape": [SEQ_LEN, IMAGE_DIM, IMAGE_DIM,
                                    int(model.input_shape[-1])],
                   "num_classes": len(CLASSES), "classes": list(CLASSES),
                   "modality": "depth", "dtype": "uint16"}, handle)
    return path
