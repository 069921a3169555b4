"""Stage 1, the dataset as it lies on disk: label files, frames, windows, the manifest.

Nothing here imports TensorFlow when loaded (main.py's decoding workers and the
video tools load these modules): local files are read with ``open()``, and
``gs://`` paths reach TensorFlow's filesystem only when one is actually used.
May import: ``coreLib.errors``, ``coreLib.storage``.
"""
