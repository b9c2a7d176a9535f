"""``python src/predict.py FILE... [--model URI] [--format table|json] [--drop-outside]``: ``robert predict``.

Not a ``@hydra.main`` script like the stages: it takes files and options (argparse, :mod:`robert.cli`),
with its defaults from ``conf/predict.yaml``; user errors are one line and exit status 2.

    python src/predict.py examples/hd189733b_emission.csv --model models:/robert-wfc3_spitzer@champion --drop-outside
"""

import sys

from robert.cli import main

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))
