"""Reading Keras ``.weights.h5`` files array by array, for exact comparisons in tests."""

import h5py


def h5_arrays(path: str) -> dict:
    """Every dataset of a Keras .weights.h5 file, by its path in the file."""
    arrays = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) else None)
    return arrays
