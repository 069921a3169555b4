"""Stage 4, running a trained model on frames: ``model_loading`` (a built model with
trained weights), ``frame_reader`` (decode-once frame reading), ``forward`` (the
batched forward pass); the exported files: ``export_info`` (export.json and the
signatures' names, TensorFlow-free), ``exported_runner`` (the interface and the
SavedModel runner), ``litert_runner`` (``.tflite`` files), ``quantization`` (int8
<-> float32), ``exported_model`` (loading one, checking it against the data); and
the runners detection uses (``model_spec``: what a model file takes;
``stream_steps``: one frame at a time with a state; ``window_runners``: every
window of a sequence; ``runners``: the one for a model file and mode).

Shared by score.py, detect.py and export.py. May import: the base modules,
``coreLib.data``, ``coreLib.preprocessing``, ``coreLib.models`` and
``coreLib.training`` (the run config a model was trained with).
"""
