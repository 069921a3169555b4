"""What every benchmark script shares: writing its figures to bench/results/."""

import json
import os


def write_results(path: str, results: dict) -> None:
    """Writes a benchmark's figures as sorted JSON, atomically, and says where."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # A killed benchmark must leave the previous figures, not half a file.
    temp = f"{path}.tmp-{os.getpid()}"
    with open(temp, "w") as handle:
        json.dump(results, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(temp, path)
    print(f"wrote {path}")
