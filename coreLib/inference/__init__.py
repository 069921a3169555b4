"""Stage 4, running a trained model on frames: model loading, decode-once frame reading,
the batched forward pass.

Shared by score.py, detect.py and export.py. May import: the base modules,
``coreLib.data``, ``coreLib.preprocessing``, ``coreLib.models`` and
``coreLib.training`` (the run config a model was trained with).
"""
