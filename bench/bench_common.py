"""What every benchmark script shares: writing its figures to bench/results/."""

import json
import os


def write_results(path: str, results: dict) -> None:
    """Writes a benchmark's figures as sorted JSON and says where."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(results, handle, indent=1, sort_keys=True)
        handle.write("\n")
    print(f"wrote {path}")
