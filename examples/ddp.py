"""The digits model of train_digits.py, trained by several processes with DistributedDataParallel.

    python -m tapegrad.distributed.run --nproc-per-node 2 examples/ddp.py
    torchrun --nproc-per-node 2 examples/ddp.py              # PyTorch's launcher works too
    python -m tapegrad.distributed.run --nproc-per-node 2 examples/ddp.py --compile

PyTorch's recipe, unchanged: `init_process_group`, a `DistributedSampler` giving each process
its share of the training set (PyTorch's partition, reshuffled by `set_epoch`), the model
wrapped in `DistributedDataParallel`, and `no_sync()` on the micro-batches that only accumulate.
With `--compile` both steps are `tapegrad.compile`d: each process runs one program per step,
the gradient all-reduce inside it.
Each process feeds `batch_size / world_size` samples, so a step sees the same global batch size
as train_digits.py; after each synchronised backward every process holds the gradient averaged
over all of them. The order of samples and the dropout masks differ from the single-device run
(they are drawn per process), so the accuracy is close to train_digits.py's rather than equal.
"""
import sys

import tapegrad as torch
import tapegrad.distributed as dist
import tapegrad.nn as nn
from tapegrad.nn.parallel import DistributedDataParallel as DDP
from tapegrad.utils.data import DataLoader, DistributedSampler
from train_digits import MLP, arguments, digits_splits, evaluate


def main(argv=None):
    parser = arguments(__doc__.splitlines()[0], "global micro-batch size")
    parser.add_argument("--compile", action="store_true", help="tapegrad.compile the steps")
    args = parser.parse_args(argv)
    dist.init_process_group("gloo")  # before any tensor: JAX connects processes first
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(args.seed + rank)  # DDP broadcasts rank 0's initial weights anyway

    train_set, test_set = digits_splits(args.seed)
    sampler = DistributedSampler(train_set, seed=args.seed, drop_last=True)
    train_loader = DataLoader(train_set, batch_size=args.batch_size // world, sampler=sampler,
                              drop_last=True)
    test_loader = DataLoader(test_set, batch_size=256)

    model = DDP(MLP())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = len(train_loader) // args.accumulation_steps
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()

    def accumulate(xb, yb):  # a micro-batch whose gradient only accumulates, locally
        with model.no_sync():
            loss = loss_fn(model(xb), yb)
            (loss / args.accumulation_steps).backward()
        return loss

    def update(xb, yb):  # the last micro-batch: averaged over the processes, then the step
        loss = loss_fn(model(xb), yb)
        (loss / args.accumulation_steps).backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        optimizer.zero_grad()
        return loss

    if args.compile:  # each process runs one program per step, the all-reduce inside
        accumulate, update = torch.compile(accumulate), torch.compile(update)

    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        running, count = 0.0, 0
        for i, (xb, yb) in enumerate(train_loader):
            if (i + 1) % args.accumulation_steps == 0:
                loss = update(xb, yb)
                scheduler.step()
            else:
                loss = accumulate(xb, yb)
            running += loss.item()
            count += 1
        optimizer.zero_grad()
        mean = torch.tensor(running / count)
        dist.all_reduce(mean, op=dist.ReduceOp.AVG)
        if rank == 0:
            print(f"epoch {epoch + 1:2d}: train loss {mean.item():.4f} (mean of {world} ranks)")

    accuracy = evaluate(model.module, test_loader)  # the same weights on every rank
    if rank == 0:
        print(f"\nheld-out accuracy: {accuracy:.2%} on {len(test_set)} digits ({world} processes)")
    dist.destroy_process_group()
    return accuracy


if __name__ == "__main__":
    sys.exit(0 if main() >= 0.95 else 1)
