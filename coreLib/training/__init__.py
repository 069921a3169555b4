"""Stage 3, train.py: the tf.data input pipeline, strategies, optimizer and the loop.

May import: the base modules, ``coreLib.data``, ``coreLib.preprocessing`` (the record
format) and ``coreLib.models``.
"""
