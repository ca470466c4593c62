"""``python -m exporter.train``: the command line of ``Classifier/Detector(...).train(...)`` (exporter/api.py).

    python -m exporter.train --backbone MobileNet --dataset out/shapes_cls --width-mult 0.35 --input-size 96 \\
        --lr 0.003 --batch-size 32 --optimizer AdamW

The recipe (data, augmentation, SSD targets and loss, optimiser, checkpoints) is described in
exporter/train_loop.py; the data in exporter/train_data.py, the SSD targets and loss in exporter/train_ssd.py.
"""
import os
import sys
import time

from .api import Classifier, Detector
from .models import get_backbone


def main(argv=None):
    """``python -m exporter.train``: the command line of ``Classifier/Detector(...).train(...)``."""
    import argparse
    import shutil
    p = argparse.ArgumentParser(prog="python -m exporter.train",
                                description="Train a small model on a dataset in MMEdu's layout (CPU). The "
                                "README's shapes classifier: --backbone MobileNet --width-mult 0.35 --input-size 96 "
                                "--lr 0.003 --batch-size 32 --optimizer AdamW.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # --help shows them
    p.add_argument("--backbone", required=True, help="MobileNet, SSD_Lite, ... (MMEdu's names)")
    p.add_argument("--dataset", required=True, help="dataset folder (python -m exporter.data makes one)")
    p.add_argument("--width-mult", type=float, default=1.0)
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--optimizer", default="SGD", choices=["SGD", "Adam", "AdamW"])
    p.add_argument("--weight-decay", type=float, default=4e-5)
    p.add_argument("--checkpoint", default=None, help="start from this .pth (fine-tuning)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="use at most this many training pictures")
    p.add_argument("--save-fold", default=None, help="folder for the checkpoints (default checkpoints/<task>_model)")
    p.add_argument("--copy-to", default=None, help="also copy the best checkpoint to this path")
    args = p.parse_args(argv)
    spec = get_backbone(args.backbone)
    cls = Detector if spec.task == "detection" else Classifier
    model = cls(backbone=spec.name, width_mult=args.width_mult, input_size=args.input_size)
    model.load_dataset(args.dataset)
    if args.save_fold:
        model.save_fold = args.save_fold
    t = time.time()
    path = model.train(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, checkpoint=args.checkpoint,
                       optimizer=args.optimizer, weight_decay=args.weight_decay, seed=args.seed,
                       threads=args.threads, limit=args.limit)
    print("training took %.0f s; best checkpoint %s" % (time.time() - t, path))
    if args.copy_to:
        os.makedirs(os.path.dirname(os.path.abspath(args.copy_to)), exist_ok=True)
        shutil.copyfile(path, args.copy_to)
        print("copied to %s" % args.copy_to)
    return 0


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
