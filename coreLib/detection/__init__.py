"""Stage 6, detect.py: per-frame labels and segments in long sequences and live streams.

``detector`` reads sequences or video (each frame decoded once) and runs a model
offline or online (the streaming model frame by frame with its state); ``segments``
smooths per-frame probabilities into segments; ``metrics`` scores them (frame
accuracy, edit score, F1@k, latency). May import every stage above it.
"""
