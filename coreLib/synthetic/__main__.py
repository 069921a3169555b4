"""``python -m coreLib.synthetic DEST``: writes a synthetic BII-layout dataset."""

from coreLib.cli import run_main
# The imported module's main, so that what the worker processes unpickle refers to
# coreLib.synthetic.generator and not to __main__.
from coreLib.synthetic.generator import main

if __name__ == "__main__":
    run_main(main, prog="python -m coreLib.synthetic")
