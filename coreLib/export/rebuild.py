"""The model rebuilt from layers that have builtin LiteRT kernels (same weights)."""

from typing import List

from coreLib.cli import import_tensorflow_quietly
from coreLib.models.litert_layers import FramewiseConv3D

import_tensorflow_quietly()

import keras  # noqa: E402  (after the quiet TensorFlow import)


def rebuild_for_litert(model):
    """The same model built from layers that have builtin LiteRT kernels.

    * ``MaxPooling3D`` whose pool and stride are 1 over time: a
      ``TimeDistributed(MaxPooling2D)`` of the same name (a 2D pool of every
      frame; the 3D pool has no builtin kernel and would need a Flex op).
    * ``LSTM`` / ``GRU`` / ``SimpleRNN``: ``unroll=True`` (the window length is
      fixed; a loop would become a WHILE over tensor lists) and never the cuDNN
      kernel (``use_cudnn=False``), which only a GPU TensorFlow can run.
    * ``Conv3D`` with stride and dilation 1: a :class:`FramewiseConv3D` of the
      same name (CONV_2D kernels: accelerated and int8-quantisable).
    Every other layer is cloned from its config; all weights are copied by layer
    name.

    Args:
        model: a functional ``keras.Model``.

    Returns:
        ``(rebuilt keras.Model, names of the layers replaced)``.
    """
    replaced: List[str] = []

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.MaxPooling3D):
            pool, strides = tuple(layer.pool_size), tuple(layer.strides)
            if (pool[0] == 1 and strides[0] == 1
                    and config.get("data_format", "channels_last") == "channels_last"):
                replaced.append(layer.name)
                return keras.layers.TimeDistributed(
                    keras.layers.MaxPooling2D(pool[1:], strides[1:], padding=layer.padding),
                    name=layer.name)
        if (isinstance(layer, keras.layers.Conv3D)
                and tuple(layer.strides) == (1, 1, 1)
                and tuple(layer.dilation_rate) == (1, 1, 1) and layer.groups == 1
                and config.get("data_format", "channels_last") == "channels_last"):
            replaced.append(layer.name)
            return FramewiseConv3D(layer.filters, layer.kernel_size, layer.padding,
                                   config["activation"], layer.use_bias, name=layer.name)
        if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)):
            replaced.append(layer.name)
            config["unroll"] = True
            if not isinstance(layer, keras.layers.SimpleRNN):
                config["use_cudnn"] = False   # a constructor argument, not in the config
        return layer.__class__.from_config(config)

    rebuilt = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.weights:
            rebuilt.get_layer(layer.name).set_weights(layer.get_weights())
    return rebuilt, tuple(replaced)
