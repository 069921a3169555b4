"""pyACTRECOG core library, laid out by stage; data flows one way, down this list.

Base (imported by every stage, no TensorFlow at load):
    errors          the project's own error type (ActrecogError).
    cli             shared argument parsing, quiet TensorFlow import, exit codes.
    storage         local or gs:// paths (tf.io.gfile for URIs only), atomic writes.
    progress        progress bars on a terminal, plain lines in a log.
    folder_swap     an output folder replaced as one: built beside it, then swapped in.

Stages (each may import the base and the stages above it, never one below):
    data            label files, action names, frames, hand-centred frames, windows,
                    record keys, window lists, manifest.
    synthetic       synthetic datasets in the exact BII layout.
    preprocessing   main.py: decoding, augmentation, TFRecord shards, record checks.
    models          CausalMobileNet, ConvNet3D, LRCN, DUMMY (Keras), the registry of
                    their records, their drawings/FLOP counts.
    training        train.py: input pipeline, strategies, optimizer, training loop.
    inference       model loading, decode-once frame reading, batched forward pass.
    evaluation      score.py metrics and videogen.py videos.
    detection       detect.py: per-frame labels, segments and their metrics in long
                    sequences and live streams.
    export          export.py: SavedModel and LiteRT files checked against Keras
                    (detection, beside it, uses its LiteRT cache of train.py's weights).
"""
