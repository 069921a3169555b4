"""Training and inference windows/s of each model in bfloat16 under KERAS_BACKEND=jax.

Meant for a GPU machine that has JAX but no TensorFlow: it never imports
TensorFlow (coreLib.models and coreLib.models.streaming skip it off the
TensorFlow backend), and needs only ``keras``, ``jax``, ``numpy`` and ``h5py``.
It runs on CPU too (wherever ``pip install jax keras`` works), only slower.

Per model, on random (6, 64, 64, 3) windows under the ``mixed_bfloat16`` policy
(float32 variables and softmax, bfloat16 compute): inference windows/s (a jitted
stateless forward pass) and training windows/s (a jitted stateless SGD step:
cross-entropy, gradients, update), each timed after a warm-up call that compiles.
Anchor: ConvNet3D trained at ~490 windows/s on a 2019 TPU v2-8.

    KERAS_BACKEND=jax python bench/gpu_models.py [--batch-size 32] [--steps 10]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
if os.environ["KERAS_BACKEND"] != "jax":
    sys.exit("bench/gpu_models.py: error: needs KERAS_BACKEND=jax")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import bench_common  # noqa: E402

SEQ_LEN, IMAGE_DIM, CHANNELS, NUM_CLASSES = 6, 64, 3, 17
MODELS = ("ConvNet3D", "LRCN", "CausalMobileNet")


def time_calls(function, args, steps: int) -> float:
    """Seconds per call of a jitted function, after one compiling call."""
    jax.block_until_ready(function(*args))
    start = time.perf_counter()
    for _ in range(steps):
        result = function(*args)
    jax.block_until_ready(result)
    return (time.perf_counter() - start) / steps


def bench_model(name: str, batch_size: int, steps: int, learning_rate: float) -> dict:
    from coreLib import models

    keras.utils.set_random_seed(0)
    model = models.build_model(name, SEQ_LEN, IMAGE_DIM, CHANNELS, NUM_CLASSES)
    rng = np.random.default_rng(0)
    windows = jax.numpy.asarray(rng.random((batch_size, SEQ_LEN, IMAGE_DIM, IMAGE_DIM,
                                            CHANNELS), dtype=np.float32))
    labels = jax.nn.one_hot(np.arange(batch_size) % NUM_CLASSES, NUM_CLASSES)
    trainable = [variable.value for variable in model.trainable_variables]
    frozen = [variable.value for variable in model.non_trainable_variables]

    @jax.jit
    def infer(trainable, frozen, windows):
        probabilities, _ = model.stateless_call(trainable, frozen, windows, training=False)
        return probabilities

    def loss_of(trainable, frozen, windows, labels):
        probabilities, frozen = model.stateless_call(trainable, frozen, windows,
                                                     training=True)
        loss = keras.ops.mean(keras.losses.categorical_crossentropy(labels, probabilities))
        return loss, frozen

    @jax.jit
    def train_step(trainable, frozen, windows, labels):
        (loss, frozen), gradients = jax.value_and_grad(loss_of, has_aux=True)(
            trainable, frozen, windows, labels)
        trainable = [weight - learning_rate * gradient
                     for weight, gradient in zip(trainable, gradients)]
        return trainable, frozen, loss

    infer_seconds = time_calls(infer, (trainable, frozen, windows), steps)
    train_seconds = time_calls(train_step, (trainable, frozen, windows, labels), steps)
    return {"parameters": int(model.count_params()), "batch_size": batch_size,
            "steps": steps, "inference_windows_per_second": batch_size / infer_seconds,
            "training_windows_per_second": batch_size / train_seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed calls per figure")
    parser.add_argument("--policy", default="mixed_bfloat16",
                        help="Keras dtype policy (float32 for a full-precision run)")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "bench", "results",
                                                         "gpu_models.json"))
    args = parser.parse_args()
    keras.mixed_precision.set_global_policy(args.policy)
    devices = jax.devices()
    results = {"backend": keras.backend.backend(), "policy": args.policy,
               "devices": [str(device) for device in devices],
               "platform": devices[0].platform, "jax_version": jax.__version__,
               "keras_version": keras.__version__,
               "window_shape": [SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS], "models": {}}
    for name in args.models:
        results["models"][name] = row = bench_model(name, args.batch_size, args.steps, 1e-3)
        print(f"{name:<16} inference {row['inference_windows_per_second']:>9.1f} windows/s  "
              f"training {row['training_windows_per_second']:>9.1f} windows/s", flush=True)
    bench_common.write_results(args.output, results)


if __name__ == "__main__":
    main()
