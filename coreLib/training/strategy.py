"""One factory from a strategy name to a ``tf.distribute.Strategy``.

The same training loop runs on one CPU or GPU (``default``), several local GPUs
(``mirrored``), several machines (``multiworker``, configured by ``TF_CONFIG``) or a
TPU (``tpu``); only this factory knows the difference.
"""

import json
import os
from typing import Callable, Dict, Tuple

from coreLib.cli import import_tensorflow_quietly
from coreLib.errors import ActrecogError

tf = import_tensorflow_quietly()

DEFAULT = "default"
MIRRORED = "mirrored"
MULTIWORKER = "multiworker"
TPU = "tpu"
STRATEGY_NAMES: Tuple[str, ...] = (DEFAULT, MIRRORED, MULTIWORKER, TPU)


def _default(tpu: str) -> "tf.distribute.Strategy":
    return tf.distribute.get_strategy()


def _mirrored(tpu: str) -> "tf.distribute.Strategy":
    # All local GPUs; without any, every logical CPU device (one, unless the
    # process split its CPU into several, as the tests do to mirror on a CPU).
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def _multiworker(tpu: str) -> "tf.distribute.Strategy":
    text = os.environ.get("TF_CONFIG", "")
    if not text:
        raise ActrecogError("--strategy multiworker needs TF_CONFIG (cluster and task) "
                            "in the environment")
    try:
        value = json.loads(text)
        value["cluster"]["worker"]
    except (ValueError, KeyError, TypeError) as error:
        raise ActrecogError(f"TF_CONFIG is not a valid cluster description ({error})") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def _tpu(tpu: str) -> "tf.distribute.Strategy":
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as error:
        name = tpu or "the local TPU"
        reason = str(getattr(error, "message", None) or error).splitlines()[0]
        raise ActrecogError(f"--tpu {name!r}: cannot connect ({reason})") from None
    return tf.distribute.TPUStrategy(resolver)


_FACTORIES: Dict[str, Callable[[str], "tf.distribute.Strategy"]] = {
    DEFAULT: _default, MIRRORED: _mirrored, MULTIWORKER: _multiworker, TPU: _tpu,
}


def make_strategy(name: str, tpu: str = "") -> "tf.distribute.Strategy":
    """Builds the distribution strategy called ``name``.

    Args:
        name: ``default`` (one device), ``mirrored`` (all local GPUs, or the CPU),
            ``multiworker`` (``TF_CONFIG`` cluster) or ``tpu``.
        tpu: TPU name or ``grpc://`` address for ``tpu``; empty = the local (Colab)
            TPU.

    Returns:
        The strategy; models, optimizers and metrics are created in its scope.

    Raises:
        ActrecogError: an unknown name (listing the valid ones), a missing
            ``TF_CONFIG`` or an unreachable TPU.
    """
    if name not in _FACTORIES:
        raise ActrecogError(f"unknown strategy {name!r}; valid names: "
                            f"{', '.join(STRATEGY_NAMES)}")
    return _FACTORIES[name](tpu)


def is_chief(strategy: "tf.distribute.Strategy") -> bool:
    """True for the one process that writes files (always, except non-chief workers).

    In a ``multiworker`` cluster the chief is task ``chief``, or worker 0 when the
    cluster has no ``chief`` task.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if resolver is None or task_type is None:
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_id(strategy: "tf.distribute.Strategy") -> str:
    """``<task_type>_<task_id>`` in a cluster, ``local`` otherwise (for temp names)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if resolver is None or task_type is None:
        return "local"
    return f"{task_type}_{resolver.task_id}"


def uses_gpu() -> bool:
    """True when TensorFlow sees a GPU (mixed precision then means float16)."""
    return bool(tf.config.list_logical_devices("GPU"))
