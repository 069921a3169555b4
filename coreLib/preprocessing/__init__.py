"""Stage 2, main.py: windows -> augmented copies -> TFRecord shards, JSON lists, manifest.

``preprocess`` plans and writes the DataSet folder; ``sequence_cache`` and
``tfrecord_io`` are the TensorFlow-free worker side (decode each frame once, write
shards); ``records`` is the TensorFlow record format shared with the readers;
``augment`` the rotations and flips; ``checks`` the record checks of debug.py CHECK.
May import: the base modules and ``coreLib.data``.
"""
