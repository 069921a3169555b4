"""Runs trainer.run_training in a fresh process and saves the trained weights.

The distribution tests need processes of their own: logical CPU devices and
multi-worker collectives must be configured before TensorFlow initialises, which
the test process has long done.

    python tests/training_driver.py SPEC_JSON

SPEC_JSON: {"logical_cpus": 2 (optional), "runs": [{"config": {TrainConfig fields},
"weights": "out.npz"}, ...]}. Each run saves its model's weights (in
``model.get_weights()`` order) and its history to the .npz file.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from coreLib.cli import import_tensorflow_quietly  # noqa: E402

tf = import_tensorflow_quietly()


def main() -> None:
    spec = json.loads(sys.argv[1])
    logical_cpus = spec.get("logical_cpus", 1)
    if logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    import numpy as np

    from coreLib.training import trainer

    for run in spec["runs"]:
        result = trainer.run_training(trainer.TrainConfig(**run["config"]), progress=False)
        np.savez(run["weights"], *result.model.get_weights(),
                 history=json.dumps(result.history), num_replicas=result.num_replicas,
                 is_chief=result.is_chief)


if __name__ == "__main__":
    main()
