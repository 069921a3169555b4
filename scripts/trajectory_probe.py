#!/usr/bin/env python3
"""A quick learnability probe: is a preprocessed dataset learnable at all?

    python scripts/trajectory_probe.py DATASET_DIR [--steps 300]

Trains a plain, small (2+1)D network - three blocks of a 1x3x3 spatial and a
3x1x1 temporal convolution (16, 32, 64 filters), each with BatchNorm (momentum
0.9) and ReLU, then spatial max pooling; global average pooling and a softmax
layer - on the Train shards of a main.py ``DataSet`` folder (no augmentation,
Adam 2e-3, batch 32) and prints its accuracy on the Test windows (the unseen
test subjects), per class with its worst confusion. Not a recipe: a sanity check of a synthetic family
(``python -m coreLib.synthetic DEST --style trajectory``), independent of the
project's models.
"""

import argparse
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_probe(seq_len: int, image_dim: int, channels: int, num_classes: int,
                widths=(16, 32, 64)):
    """The (2+1)D probe: ``(B, L, D, D, C)`` float32 -> ``(B, num_classes)`` softmax."""
    import keras
    inputs = keras.Input((seq_len, image_dim, image_dim, channels))
    features = inputs
    # BatchNorm momentum 0.9: with Keras' 0.99 the moving statistics of a run
    # of a few hundred steps are still far from the data's, and at inference the
    # net answers one class.
    for filters in widths:
        features = keras.layers.Conv3D(filters, (1, 3, 3), padding="same",
                                       use_bias=False)(features)
        features = keras.layers.BatchNormalization(momentum=0.9)(features)
        features = keras.layers.ReLU()(features)
        features = keras.layers.Conv3D(filters, (3, 1, 1), padding="same",
                                       use_bias=False)(features)
        features = keras.layers.BatchNormalization(momentum=0.9)(features)
        features = keras.layers.ReLU()(features)
        features = keras.layers.MaxPooling3D((1, 2, 2))(features)
    features = keras.layers.GlobalAveragePooling3D()(features)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(features)
    return keras.Model(inputs, outputs, name="probe_2plus1d")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir", help="a main.py DataSet folder")
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import keras
    import numpy as np
    from coreLib.data import manifest as manifest_lib
    from coreLib.evaluation import scoring
    from coreLib.inference import forward
    from coreLib.training import pipeline

    keras.utils.set_random_seed(0)
    manifest = manifest_lib.load_manifest(args.dataset_dir)
    config = pipeline.PipelineConfig(batch_size=args.batch_size, training=True, seed=0,
                                     augment=False)
    train = pipeline.make_dataset(args.dataset_dir, "Train", manifest, config)
    model = build_probe(manifest.seq_len, manifest.image_dim, manifest.channels,
                        manifest.num_classes)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    started = time.perf_counter()
    history = model.fit(train.take(args.steps), epochs=1, verbose=2)
    train_seconds = time.perf_counter() - started

    (test_json,) = glob.glob(os.path.join(glob.escape(args.dataset_dir), "mode:Test_*.json"))
    windows = scoring.load_test_windows(test_json, manifest)
    truth = np.array([window.label for window in windows])
    predicted = forward.predict_windows(model, windows, manifest, batch_size=256,
                                        progress=False).argmax(axis=1)
    accuracy = float(np.mean(predicted == truth))
    chance = float(np.max(np.bincount(truth)) / len(truth))
    print(f"probe: {model.count_params()} parameters, {args.steps} steps in "
          f"{train_seconds:.0f} s, last train accuracy "
          f"{history.history['accuracy'][-1]:.3f}; Test accuracy {accuracy:.3f} on "
          f"{len(windows)} windows (majority class {chance:.3f})")
    for index, name in enumerate(manifest.classes):
        rows = truth == index
        if rows.any():
            wrong = np.bincount(predicted[rows], minlength=len(manifest.classes))
            wrong[index] = 0
            worst = int(np.argmax(wrong))
            print(f"  {name:15s} {np.mean(predicted[rows] == index):.2f} "
                  f"(most confused with {manifest.classes[worst]}: "
                  f"{wrong[worst] / rows.sum():.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
