"""The digits model of train_digits.py, its batches split over every local device.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/data_parallel.py

One line differs from single-device training: `model = nn.DataParallel(MLP())`. Each batch is
sharded along dim 0 over the devices, the parameters are replicated, and every program (forward,
backward with its gradient all-reduce, optimizer update) runs SPMD, so the numbers are those of
train_digits.py on one device and the held-out accuracy it prints is the same. On a CPU, XLA's
flag above makes 8 host devices; on a GPU machine, all its GPUs are used.
"""
import sys

import jax

import tapegrad as torch
import tapegrad.nn as nn
from tapegrad.utils.data import DataLoader
from train_digits import MLP, arguments, digits_splits, evaluate


def main(argv=None):
    args = arguments(__doc__.splitlines()[0]).parse_args(argv)
    torch.manual_seed(args.seed)

    train_set, test_set = digits_splits(args.seed)
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
