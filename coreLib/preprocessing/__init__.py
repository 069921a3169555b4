"""Stage 2, main.py: windows -> augmented copies -> TFRecord shards, JSON lists, manifest.

``preprocess`` is the driver: ``discovery`` and ``plan`` decide every window
without pixels, ``decode_pool`` decodes every frame once into ``sequence_cache``
files (frames checked by ``png_check``), ``shard_writer`` writes the shards and
``resume_state`` decides what a killed run left may be reused. ``sequence_cache``,
``png_check``, ``shard_writer`` and ``tfrecord_io`` are the TensorFlow-free worker
side; ``records`` is the TensorFlow record format shared with the readers;
``augment`` the rotations and flips; ``shards`` what a shard holds, checked against
the manifest; ``checks`` the record checks of debug.py CHECK; ``legacy_records``
1.0.4's record folders (no manifest).
May import: the base modules and ``coreLib.data``.
"""
