"""The feature keys of a window record, in one TensorFlow-free place.

``coreLib.preprocessing.records`` (TensorFlow parsing) and ``coreLib.preprocessing.tfrecord_io`` (the
TensorFlow-free writer in main.py's worker processes) both take them from here,
so the writer and the readers cannot drift apart. See ``coreLib.preprocessing.records`` for what
each field holds.
"""

PIXELS_KEY = "pixels"
SHAPE_KEY = "shape"
LABEL_KEY = "label"
SUBJECT_KEY = "subject"
ACTION_KEY = "action"
START_KEY = "start"
ROTATION_KEY = "rotation"
FLIP_KEY = "flip"
LEGACY_FEATS_KEY = "feats"
# Hand-centred records (main.py --frames hand): per frame the crop box, (L, 4)
# little-endian float32 centre x, centre y, side (depth-frame pixels), depth (mm).
CROP_KEY = "crop"
