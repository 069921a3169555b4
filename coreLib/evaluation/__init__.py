"""Stage 5, score.py and videogen.py: metrics on the Test windows, labelled videos.

May import: everything upstream (base, data, preprocessing, models, training,
inference).
"""
