"""The digits model of train_digits.py, its batches split over every local device.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/data_parallel.py

One line differs from single-device training: `model = nn.DataParallel(MLP())`. Each batch is
sharded along dim 0 over the devices, the parameters are replicated, and every program (forward,
backward with its gradient all-reduce, optimizer update) runs SPMD, so the numbers are those of
train_digits.py on one device and the held-out accuracy it prints is the same. On a CPU, XLA's
flag above makes 8 host devices; on a GPU machine, all its GPUs are used.
"""
import argparse
import sys

import jax
from sklearn.datasets import load_digits

import tapegrad as torch
import tapegrad.nn as nn
from tapegrad.utils.data import DataLoader, TensorDataset, random_split
from train_digits import MLP, evaluate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32, help="micro-batch size")
    parser.add_argument("--accumulation-steps", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    train_set, test_set = random_split(TensorDataset(x, y), [0.8, 0.2],
                                       generator=torch.Generator().manual_seed(args.seed))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
    test_loader = DataLoader(test_set, batch_size=256)

    model = nn.DataParallel(MLP())  # the one change
    print(f"data parallel over {len(model.device_ids)} devices: {jax.local_devices()}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = len(train_loader) // args.accumulation_steps
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()

    for epoch in range(args.epochs):
        running, count = 0.0, 0
        for i, (xb, yb) in enumerate(train_loader):
            loss = loss_fn(model(xb), yb)
            (loss / args.accumulation_steps).backward()
            running += loss.item()
            count += 1
            if (i + 1) % args.accumulation_steps == 0:
                nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                optimizer.step()
                optimizer.zero_grad()
                scheduler.step()
        optimizer.zero_grad()
        print(f"epoch {epoch + 1:2d}: train loss {running / count:.4f}")

    accuracy = evaluate(model, test_loader)
    print(f"\nheld-out accuracy: {accuracy:.2%} on {len(test_set)} digits")
    return accuracy


if __name__ == "__main__":
    sys.exit(0 if main() >= 0.95 else 1)
