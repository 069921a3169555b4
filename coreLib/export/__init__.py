"""Stage 6, export.py: SavedModel and LiteRT files that give the Keras model's answers.

Layers without a builtin LiteRT kernel are rebuilt with equivalents that load the
same weights; every file is checked against the Keras model at export. The loader
of the exported files is ``coreLib.inference.exported_model``, so score.py and
detect.py run on them. May import every stage above it.
"""
