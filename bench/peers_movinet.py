#!/usr/bin/env python3
"""MoViNet-A0-Stream's side of bench/peers.py; runs in .venv-peers (TF 2.20, tf-keras).

The model is the TensorFlow Model Garden's own (official.projects.movinet), in the
configuration the Garden exports for LiteRT streaming: MoViNet-A0, causal
convolutions and cumulative pooling, (2+1)D convolutions, 2+3D squeeze-excitation,
hard-swish / hard-sigmoid, no positional encoding; random initialisation; the
classifier head sized to the DataSet's classes. Its training reads the same
TFRecords through the project's own input pipeline (coreLib.training.pipeline: the
same shuffles, seeds and online augmentation as train.py) and follows train.py's
recipe: batch 32, Adam, warm-up then cosine, the run-length BatchNorm momentum,
L2 1e-4 and dropout 0.2 as CausalMobileNet has, an Eval pass after each epoch and
the best weights by Eval loss.

    peers_movinet.py train DATASET_DIR OUT_DIR --steps N --epochs E --lr LR
    peers_movinet.py score OUT_DIR TEST_NPZ          # Test micro F1 of the kept weights
    peers_movinet.py export OUT_DIR STREAM_TFLITE    # float32 one-frame stream model

Each writes one JSON line on stdout (the last line) for bench/peers.py.
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from official.projects.movinet.modeling import movinet, movinet_model  # noqa: E402

import train as train_cli  # noqa: E402  (train.py's recipe defaults; imports no TensorFlow)
from coreLib.data import manifest as manifest_lib  # noqa: E402
from coreLib.preprocessing import shards  # noqa: E402
from coreLib.training import pipeline  # noqa: E402

MODEL_ID = "a0"
# The Garden's LiteRT stream configuration (its export_saved_model.py example).
STREAM_CONFIG = dict(causal=True, conv_type="2plus1d", se_type="2plus3d",
                     activation="hard_swish", gating_activation="hard_sigmoid",
                     use_positional_encoding=False)
# CausalMobileNet's (coreLib.models.streaming): the same regularisation for both.
L2_FACTOR = 1e-4
DROPOUT_RATE = 0.2
BATCH_SIZE = 32
SHUFFLE_BUFFER = 1024      # train.py's --shuffle-buffer default
WARMUP_FRACTION = 0.05     # coreLib.training.optimizer.WARMUP_FRACTION
BN_MOMENTUM_RANGE = (0.9, 0.99)
WEIGHTS_NAME = "movinet.weights.h5"
RUN_NAME = "movinet_run.json"
STREAM_SIGNATURE = "stream_step"   # coreLib.inference.exported_model.STREAM_SIGNATURE


def epoch_seed(seed: int, epoch: int) -> int:
    """coreLib.training.config.epoch_seed (that module imports Keras 3)."""
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 17) % (2 ** 31 - 1)


def bn_momentum_for(total_steps: int) -> float:
    """train.py's run-length default: 1 - 20 / steps within [0.9, 0.99]."""
    return min(BN_MOMENTUM_RANGE[1], max(BN_MOMENTUM_RANGE[0], 1.0 - 20.0 / total_steps))


def build_movinet(window_shape, num_classes: int, bn_momentum: float = 0.99,
                  stream: bool = False) -> tf_keras.Model:
    """MoViNet-A0-Stream from the Model Garden.

    Args:
        window_shape: (L, D, D, C) of the training windows.
        stream: False: the window model ``{"image": (B, L, D, D, C)} -> (B, K)``
            logits. True: the one-frame model with external states,
            ``{"image": (1, 1, D, D, C), **states} -> (logits, states)``.
    """
    frames = 1 if stream else window_shape[0]
    batch = 1 if stream else None
    spec = tf_keras.layers.InputSpec(shape=[batch, frames] + list(window_shape[1:]))
    regularizer = tf_keras.regularizers.l2(L2_FACTOR)
    backbone = movinet.Movinet(model_id=MODEL_ID, input_specs=spec, use_sync_bn=False,
                               norm_momentum=bn_momentum, kernel_regularizer=regularizer,
                               use_external_states=stream,
                               **STREAM_CONFIG)
    model = movinet_model.MovinetClassifier(
        backbone, num_classes=num_classes, input_specs={"image": spec},
        activation=STREAM_CONFIG["activation"], dropout_rate=DROPOUT_RATE,
        kernel_regularizer=regularizer, output_states=stream)
    model.build([batch or 1, frames] + list(window_shape[1:]))
    return model


def learning_rate_schedule(peak: float, total_steps: int):
    """train.py's warm-up + cosine (coreLib.training.optimizer), in tf-keras."""
    warmup = max(1, round(WARMUP_FRACTION * total_steps))
    return tf_keras.optimizers.schedules.CosineDecay(
        0.0, max(1, total_steps - warmup), alpha=0.0, warmup_target=peak,
        warmup_steps=warmup)


def make_steps(model, optimizer):
    """Compiled train and eval steps: ``(pixels, one-hot) -> (loss, correct)``."""
    def loss_and_correct(labels, logits, smoothing=0.0):
        # train.py's label smoothing on the Train steps only, as coreLib.training.loop.
        per_example = tf_keras.losses.categorical_crossentropy(labels, logits,
                                                               from_logits=True,
                                                               label_smoothing=smoothing)
        loss = tf.reduce_mean(per_example)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1),
                                                 tf.argmax(labels, 1)), tf.float32))
        return loss, correct

    @tf.function
    def train_step(pixels, labels):
        with tf.GradientTape() as tape:
            loss, correct = loss_and_correct(labels, model({"image": pixels}, training=True),
                                             train_cli.DEFAULT_LABEL_SMOOTHING)
            total = loss + tf.add_n(model.losses)
        gradients = tape.gradient(total, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss, correct

    @tf.function
    def eval_step(pixels, labels):
        return loss_and_correct(labels, model({"image": pixels}, training=False))

    return train_step, eval_step


def run_epoch(step, dataset) -> dict:
    """Runs ``step`` over ``dataset``; mean loss, accuracy and seconds."""
    loss_sum, correct, count, steps = 0.0, 0.0, 0, 0
    began = time.perf_counter()
    for pixels, labels in dataset:
        loss, right = step(pixels, labels)
        loss_sum += float(loss)
        correct += float(right)
        count += int(labels.shape[0])
        steps += 1
    return {"loss": loss_sum / max(steps, 1), "accuracy": correct / max(count, 1),
            "seconds": time.perf_counter() - began, "steps": steps}


def split_datasets(dataset_dir: str, manifest, epoch: int, steps_per_epoch: int,
                   seed: int, shard_uris: dict):
    """The epoch's Train batches and the Eval batches, exactly as train.py reads them."""
    train_config = pipeline.PipelineConfig(
        batch_size=BATCH_SIZE, training=True, shuffle_buffer=SHUFFLE_BUFFER,
        seed=epoch_seed(seed, epoch), augment=train_cli.DEFAULT_AUGMENT,
        color_jitter=train_cli.DEFAULT_COLOR_JITTER,
        zoom_jitter=train_cli.DEFAULT_ZOOM_JITTER, mixup=train_cli.DEFAULT_MIXUP,
        deterministic=True, verify_sha256=False)
    eval_config = pipeline.PipelineConfig(batch_size=BATCH_SIZE, training=False, seed=seed,
                                          deterministic=True, verify_sha256=False)
    train = pipeline.make_dataset(dataset_dir, "Train", manifest, train_config,
                                  shard_uris=shard_uris["Train"])
    evaluation = pipeline.make_dataset(dataset_dir, "Eval", manifest, eval_config,
                                       shard_uris=shard_uris["Eval"])
    eval_steps = manifest.splits["Eval"].num_windows // BATCH_SIZE
    return train.repeat().take(steps_per_epoch), evaluation.take(eval_steps)


def train(args) -> dict:
    manifest = manifest_lib.load_manifest(args.dataset_dir)
    tf_keras.utils.set_random_seed(args.seed)
    total_steps = args.steps
    steps_per_epoch = [total_steps // args.epochs + (1 if e < total_steps % args.epochs else 0)
                       for e in range(args.epochs)]
    model = build_movinet(manifest.window_shape, manifest.num_classes,
                          bn_momentum_for(total_steps))
    optimizer = tf_keras.optimizers.Adam(learning_rate_schedule(args.lr, total_steps))
    train_step, eval_step = make_steps(model, optimizer)
    shard_uris = {split: tuple(shards.check_shards(args.dataset_dir, manifest, split, True))
                  for split in ("Train", "Eval")}
    os.makedirs(args.out_dir, exist_ok=True)
    history, best_loss = [], math.inf
    for epoch, steps in enumerate(steps_per_epoch):
        train_data, eval_data = split_datasets(args.dataset_dir, manifest, epoch, steps,
                                               args.seed, shard_uris)
        trained = run_epoch(train_step, train_data)
        evaluated = run_epoch(eval_step, eval_data)
        history.append({"epoch": epoch + 1, "steps": trained["steps"],
                        "seconds": trained["seconds"], "train_loss": trained["loss"],
                        "train_accuracy": trained["accuracy"],
                        "eval_loss": evaluated["loss"],
                        "eval_accuracy": evaluated["accuracy"]})
        print(f"epoch {epoch + 1}: {json.dumps(history[-1])}", file=sys.stderr, flush=True)
        if evaluated["loss"] < best_loss:
            best_loss = evaluated["loss"]
            model.save_weights(os.path.join(args.out_dir, WEIGHTS_NAME))
    result = {"model": "MoViNet-A0-Stream", "steps": total_steps, "lr": args.lr,
              "bn_momentum": bn_momentum_for(total_steps), "history": history,
              "parameters": int(model.count_params()),
              "window_shape": list(manifest.window_shape),
              "num_classes": manifest.num_classes}
    with open(os.path.join(args.out_dir, RUN_NAME), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    return result


def load_trained(out_dir: str):
    with open(os.path.join(out_dir, RUN_NAME), encoding="utf-8") as handle:
        run = json.load(handle)
    model = build_movinet(tuple(run["window_shape"]), run["num_classes"], run["bn_momentum"])
    model.load_weights(os.path.join(out_dir, WEIGHTS_NAME))
    return run, model


def window_logits(model, pixels: np.ndarray, batch_size: int = 64) -> np.ndarray:
    run = tf.function(lambda batch: model({"image": batch}, training=False))
    return np.concatenate([run(tf.constant(pixels[i:i + batch_size])).numpy()
                           for i in range(0, len(pixels), batch_size)])


def score(args) -> dict:
    """Micro F1 (= accuracy: one label per window) on the Test windows of the npz."""
    from sklearn.metrics import f1_score

    run, model = load_trained(args.out_dir)
    test = np.load(args.test_npz)
    prediction = window_logits(model, test["pixels"]).argmax(axis=1)
    labels = list(range(run["num_classes"]))
    return {"test_micro_f1": float(f1_score(test["labels"], prediction, labels=labels,
                                            average="micro", zero_division=0)),
            "test_macro_f1": float(f1_score(test["labels"], prediction, labels=labels,
                                            average="macro", zero_division=0)),
            "num_windows": int(len(prediction))}


def stream_function(stream_model, state_names):
    """One frame and the states in, probabilities and new states out, named as
    export.py names CausalMobileNet's stream signature (state_i / new_state_i)."""
    def step(frame, *states):
        logits, new_states = stream_model(
            {"image": frame[:, None], **dict(zip(state_names, states))}, training=False)
        outputs = {"probabilities": tf.nn.softmax(logits)}
        outputs.update({f"new_state_{i}": new_states[name]
                        for i, name in enumerate(state_names)})
        return outputs
    return step


def export(args) -> dict:
    """The one-frame stream model as float32 LiteRT, checked against the window model."""
    run, window_model = load_trained(args.out_dir)
    length, dim, _, channels = run["window_shape"]
    stream_model = build_movinet(tuple(run["window_shape"]), run["num_classes"],
                                 run["bn_momentum"], stream=True)
    stream_model.set_weights(window_model.get_weights())
    states = stream_model.init_states([1, 1, dim, dim, channels])
    state_names = sorted(states)
    signature = [tf.TensorSpec([1, dim, dim, channels], tf.float32, name="frame")] + [
        tf.TensorSpec(states[name].shape, states[name].dtype, name=f"state_{i}")
        for i, name in enumerate(state_names)]
    step = tf.function(stream_function(stream_model, state_names))
    concrete = step.get_concrete_function(*signature)
    window = np.random.default_rng(0).random((1, length, dim, dim, channels), np.float32)
    values = [states[name] for name in state_names]
    for index in range(length):
        outputs = concrete(tf.constant(window[:, index]), *values)
        values = [outputs[f"new_state_{i}"] for i in range(len(state_names))]
    reference = tf.nn.softmax(window_logits(window_model, window)).numpy()
    gap = float(np.abs(outputs["probabilities"].numpy() - reference).max())
    # Through a SavedModel signature, as export.py converts CausalMobileNet's, so
    # that both files carry a stream_step signature with the same names.
    holder = tf.Module()
    holder.model = stream_model
    saved_model_dir = os.path.join(args.out_dir, "stream_saved_model")
    tf.saved_model.save(holder, saved_model_dir, signatures={STREAM_SIGNATURE: concrete})
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=[STREAM_SIGNATURE])
    content = converter.convert()
    with open(args.tflite, "wb") as handle:
        handle.write(content)
    window_path = write_window_litert(window_model, run["window_shape"], args.out_dir,
                                      args.tflite)
    return {"stream_vs_window_max_abs": gap, "states": len(state_names),
            "state_values": int(sum(np.prod(value.shape) for value in values)),
            "tflite_bytes": len(content), "parameters": int(window_model.count_params()),
            "window_tflite": window_path}


def write_window_litert(window_model, window_shape, out_dir: str, stream_path: str) -> str:
    """The window model (one window in, probabilities out) as float32 LiteRT beside
    the stream file, for counting its arithmetic as CausalMobileNet's is counted."""
    serve = tf.function(lambda window: {"probabilities": tf.nn.softmax(
        window_model({"image": window}, training=False))})
    concrete = serve.get_concrete_function(
        tf.TensorSpec([1] + list(window_shape), tf.float32, name="window"))
    holder = tf.Module()
    holder.model = window_model
    saved_model_dir = os.path.join(out_dir, "window_saved_model")
    tf.saved_model.save(holder, saved_model_dir, signatures={"serving_default": concrete})
    content = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir).convert()
    path = os.path.splitext(stream_path)[0] + "_window.tflite"
    with open(path, "wb") as handle:
        handle.write(content)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train")
    train_parser.add_argument("dataset_dir")
    train_parser.add_argument("out_dir")
    train_parser.add_argument("--steps", type=int, required=True)
    train_parser.add_argument("--epochs", type=int, default=4)
    train_parser.add_argument("--lr", type=float, required=True)
    train_parser.add_argument("--seed", type=int, default=0)
    score_parser = commands.add_parser("score")
    score_parser.add_argument("out_dir")
    score_parser.add_argument("test_npz")
    export_parser = commands.add_parser("export")
    export_parser.add_argument("out_dir")
    export_parser.add_argument("tflite")
    args = parser.parse_args()
    result = {"train": train, "score": score, "export": export}[args.command](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
