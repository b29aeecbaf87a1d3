"""Train an MLP on scikit-learn's bundled handwritten digits -- plain PyTorch code, run by tapegrad.

    pip install -e ".[examples]"      # scikit-learn (the data ships inside it), tqdm, matplotlib
    python examples/train_digits.py

The loop is the classic accumulate-then-step one: each micro-batch's loss is divided by
`accumulation_steps` and backpropagated; every `accumulation_steps` micro-batches the summed
gradients are clipped, the optimizer steps and the learning-rate schedule advances. At the end
the model is saved, loaded back into a fresh model, and evaluated on the held-out digits.
Swap the first import for `import torch` and the script runs on PyTorch unchanged.
"""
import argparse
import os
import sys
import tempfile
import time

from sklearn.datasets import load_digits

import tapegrad as torch
import tapegrad.nn as nn
import tapegrad.nn.functional as F
from tapegrad.utils.data import DataLoader, TensorDataset, random_split

try:
    from tqdm import tqdm
except ImportError:  # a minimal stand-in: one line per epoch, updated in place
    class tqdm:  # noqa: N801 - tqdm's name
        def __init__(self, iterable, desc="", leave=True):
            self.iterable, self.desc, self.postfix = iterable, desc, ""

        def __iter__(self):
            n = len(self.iterable)
            for i, item in enumerate(self.iterable, 1):
                yield item
                bar = "#" * (20 * i // n)
                print(f"\r{self.desc} [{bar:<20}] {i}/{n} {self.postfix}", end="", flush=True)
            print()

        def set_postfix_str(self, s, refresh=True):
            self.postfix = s


class MLP(nn.Module):
    def __init__(self, n_in=64, hidden=256, n_out=10, p_drop=0.1):
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, n_out)
        self.drop = nn.Dropout(p_drop)

    def forward(self, x):
        x = self.drop(F.relu(self.fc1(x)))
        x = self.drop(F.relu(self.fc2(x)))
        return self.head(x)


def evaluate(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(dim=1) == y).sum().item()
            total += y.shape[0]
    model.train()
    return correct / total


def print_curve(losses, width=50):
    """The loss curve as text: one bar per epoch."""
    top = max(losses)
    for epoch, loss in enumerate(losses, 1):
        print(f"  epoch {epoch:2d}  {loss:.4f}  " + "#" * max(1, round(width * loss / top)))


def arguments(description: str, batch_help: str = "micro-batch size") -> argparse.ArgumentParser:
    """The training options (shared by the data-parallel and DDP variants of this script)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32, help=batch_help)
    parser.add_argument("--accumulation-steps", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def digits_splits(seed: int):
    """The 1797 8x8 digit images (pixel values 0..16, scaled to [0, 1]): 80% train, 20% test."""
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    return random_split(TensorDataset(x, y), [0.8, 0.2],
                        generator=torch.Generator().manual_seed(seed))


def main(argv=None):
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--plot", default="digits_loss.png", help="where to save the loss plot")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    torch.manual_seed(args.seed)

    train_set, test_set = digits_splits(args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
    test_loader = DataLoader(test_set, batch_size=256)

    model = MLP()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = len(train_loader) // args.accumulation_steps
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()

    epoch_losses = []
    for epoch in range(args.epochs):
        running, count = 0.0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False)
        for i, (xb, yb) in enumerate(bar):
            loss = loss_fn(model(xb), yb)
            (loss / args.accumulation_steps).backward()  # gradients add up in .grad
            running += loss.item()
            count += 1
            if (i + 1) % args.accumulation_steps == 0:
                nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                optimizer.step()
                optimizer.zero_grad()
                scheduler.step()
                bar.set_postfix_str(f"loss {running / count:.3f}", refresh=False)
        optimizer.zero_grad()  # a trailing partial accumulation is dropped
        epoch_losses.append(running / count)
        print(f"epoch {epoch + 1:2d}: train loss {epoch_losses[-1]:.4f}, "
              f"lr {scheduler.get_last_lr()[0]:.2e}")

    # save, reload into a fresh model, evaluate the reloaded one
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits.pt")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)
        checkpoint = torch.load(path)
    restored = MLP()
    restored.load_state_dict(checkpoint["model"])
    accuracy = evaluate(restored, test_loader)
    elapsed = time.perf_counter() - start

    print("\nloss curve (mean training loss per epoch):")
    print_curve(epoch_losses)
    print(f"\nheld-out accuracy: {accuracy:.2%} on {len(test_set)} digits "
          f"({elapsed:.1f} s, {args.epochs} epochs)")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        pass
    else:
        plt.figure(figsize=(5, 3))
        plt.plot(range(1, len(epoch_losses) + 1), epoch_losses, marker="o")
        plt.xlabel("epoch")
        plt.ylabel("training loss")
        plt.title(f"digits MLP: {accuracy:.1%} held-out accuracy")
        plt.tight_layout()
        plt.savefig(args.plot)
        print(f"loss plot saved to {args.plot}")
    return accuracy


if __name__ == "__main__":
    sys.exit(0 if main() >= 0.95 else 1)
