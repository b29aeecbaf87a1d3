"""A PyTorch-style training script, run unchanged by tests/test_training_script.py.

The test executes this source as is (`import tapegrad as torch`) and, with every "tapegrad"
replaced by "torch", on PyTorch itself: so it must stay plain PyTorch code.
"""
import io

import tapegrad as torch
import tapegrad.nn as nn
import tapegrad.nn.functional as F
from tapegrad.optim.lr_scheduler import StepLR
from tapegrad.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


def make_optimizer(name, params):
    if name == "SGD":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    return torch.optim.Adam(params, lr=0.01, weight_decay=1e-3)


def train(model, optimizer, scheduler, loader, epochs, accumulation_steps, log):
    for epoch in range(epochs):
        for i, (xb, yb) in enumerate(loader):
            loss = F.cross_entropy(model(xb), yb)
            (loss / accumulation_steps).backward()
            log["losses"].append(loss.item())
            if (i + 1) % accumulation_steps == 0:
                norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
                log["norms"].append(float(norm))
                optimizer.step()
                optimizer.zero_grad()
                scheduler.step()


def run(x, y, init, opt_name="SGD", accumulation_steps=2):
    model = Net()
    model.load_state_dict({k: torch.tensor(v) for k, v in init.items()})
    dataset = TensorDataset(torch.tensor(x), torch.tensor(y))
    loader = DataLoader(dataset, batch_size=8, shuffle=False)
    optimizer = make_optimizer(opt_name, model.parameters())
    scheduler = StepLR(optimizer, step_size=6, gamma=0.5)
    log = {"losses": [], "norms": []}
    train(model, optimizer, scheduler, loader, 4, accumulation_steps, log)

    # checkpoint, restore into fresh objects, and keep training both
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer)
    restored = Net()
    restored.load_state_dict(checkpoint["model"])
    restored_opt = make_optimizer(opt_name, restored.parameters())
    restored_opt.load_state_dict(checkpoint["optimizer"])
    restored_sched = StepLR(restored_opt, step_size=100)
    restored_sched.load_state_dict(checkpoint["scheduler"])
    train(model, optimizer, scheduler, loader, 1, accumulation_steps, log)
    restored_log = {"losses": [], "norms": []}
    train(restored, restored_opt, restored_sched, loader, 1, accumulation_steps, restored_log)

    model.eval()
    with torch.no_grad():
        predictions = model(torch.tensor(x)).argmax(dim=1)
        accuracy = (predictions == torch.tensor(y)).float().mean().item()
    return {
        "losses": log["losses"],
        "norms": log["norms"],
        "lr": scheduler.get_last_lr(),
        "accuracy": accuracy,
        "weights": {k: v.detach().numpy().copy() for k, v in model.state_dict().items()},
        "restored_weights": {k: v.detach().numpy().copy()
                             for k, v in restored.state_dict().items()},
        "restored_losses": restored_log["losses"],
    }
