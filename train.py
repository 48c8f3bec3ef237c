"""Train and test a classifier: `python train.py [overrides]` (see conf/train.yaml)."""

from fmnist.cli import train_main

if __name__ == "__main__":
    train_main()
