"""Stage 4, running a trained model on frames: model loading, decode-once frame reading,
the batched forward pass, and the runners detection uses (``model_spec``: what a
model file takes; ``stream_steps``: one frame at a time with a state;
``window_runners``: every window of a sequence; ``runners``: the one for a model
file and mode).

Shared by score.py, detect.py and export.py. May import: the base modules,
``coreLib.data``, ``coreLib.preprocessing``, ``coreLib.models`` and
``coreLib.training`` (the run config a model was trained with).
"""
