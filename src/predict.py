"""``python src/predict.py FILE... [--geometry G] [--model URI] [--format table|json]``: ``robert predict``.

Not a ``@hydra.main`` script like the stages: it takes files and options (argparse, :mod:`robert.cli`),
with its defaults from ``conf/predict.yaml``; user errors are one line and exit status 2.

    python src/predict.py examples/hd189733b_emission.csv examples/hd209458b_transmission.csv
"""

import sys

from robert.cli import main

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))
