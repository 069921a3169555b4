"""pyACTRECOG core library: one module per concern.

Modules:
    errors      the project's own error type (ActrecogError).
    cli         shared argument parsing, quiet TensorFlow import, exit codes.
    storage     local or gs:// paths through tf.io.gfile, atomic writes.
    frames      reading and resizing the depth/confi/color PNG frames.
    labels      reading the OpenCV FileStorage XML label files.
    windows     sliding windows and their labels.
    augment     rotation + flip of windows (offline and training-time).
    records     TFRecord keys, serialisation and batched parsing.
    manifest    DataSet/dataset.json: classes, shapes, splits, shards.
    preprocess  main.py's pipeline: discovery, windows, JSON lists, shards.
    synthetic   a synthetic dataset in the exact BII layout.
    models      ConvNet3D, LRCN and DUMMY Keras models.
    pipeline    tf.data input pipeline over the shards.
    strategy    tf.distribute strategy factory.
    training    the custom distributed training loop.
    scoring     score.py: batched prediction and metrics.
    video       videogen.py: labelled videos.
    detection   detect.py: continuous detection in long sequences and videos.
    detection_segments  probabilities -> smoothed labels -> action segments.
    detection_metrics   frame accuracy, edit score, F1@k, latency (pure numpy).
"""
