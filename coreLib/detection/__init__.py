"""Stage 6, detect.py: per-frame labels and segments in long sequences and live streams.

``sources`` finds the recordings and reads their frames (each decoded once);
``fusion`` turns window or stream-step outputs into per-frame probabilities and
applies the fixed lag; ``segments`` smooths them into labels and segments
(``labelling``: a recording's labels, segments and metrics, recorded or live);
``metrics`` scores them (frame accuracy, edit score, F1@k, latency); ``outputs``
and ``rendering`` write the files and pictures; ``driver`` wires them for
detect.py (``config`` its settings, ``results`` what it found, ``runtime`` the
runner for a model file). Live: ``events`` labels frame by frame and makes the
events, ``live`` is the LiveDetector API, ``live_sources`` reads a pipe or a
camera, ``live_run`` is detect.py on a stream. The model runners live in
:mod:`coreLib.inference`. May import every stage above it, and
:mod:`coreLib.export.litert_cache` (the LiteRT stream step of train.py's weights).
"""
