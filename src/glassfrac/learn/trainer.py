"""The training loop of the torch models (image models, LISTI networks).

:func:`fit` runs epochs of minibatch steps on a :class:`Task` (what is model-specific: the
minibatches of an epoch, the loss of a batch, the validation loss, the fingerprint of the run):

- epoch ``e`` (from 0) draws its order from ``numpy.random.default_rng([seed, e])``;
- after every epoch the validation loss is computed; the weights of the epoch with the lowest
  validation loss are kept and loaded at the end; training stops after ``patience`` epochs
  without improvement (None: runs all ``epochs``);
- history per epoch: ``epoch`` (from 1), ``train_loss`` (mean over the epoch's examples),
  ``val_loss``, ``seconds`` (wall), ``cpu_seconds`` (process), and the number of examples under
  ``count_key`` if given;
- with a ``checkpoint`` path, a checkpoint (weights, best weights, optimiser state, history,
  the task's fingerprint; :mod:`glassfrac.learn.model_file`) is written after every epoch. A run
  started again with the same fingerprint resumes from it and ends with the same weights as an
  uninterrupted run; ``epochs`` and ``patience`` may differ (a finished run trains on).
"""

import math
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from glassfrac.core.errors import InputError
from glassfrac.core.jsonable import to_jsonable
from glassfrac.core.progress import progress as progress_bar
from glassfrac.core.schema import Key, Schema
from glassfrac.learn import model_file

CHECKPOINT_FORMAT = "glassfrac-checkpoint-1"


class Task(Protocol):
    """The model-specific parts of a training run (module docstring)."""

    def batches(self, rng: np.random.Generator):
        """The epoch's minibatches, in order, drawn with ``rng``."""

    def batch_loss(self, batch) -> tuple[torch.Tensor, int]:
        """Training loss of one minibatch (network in training mode) and its number of examples."""

    def validation_loss(self) -> float:
        """Loss on the validation data (sets the network to evaluation mode)."""

    def fingerprint(self) -> dict:
        """What a checkpoint must share with this run (JSON-able)."""


def state_copy(network: torch.nn.Module) -> dict:
    """A detached copy of ``network``'s state dict."""
    return {k: v.detach().contiguous().clone() for k, v in network.state_dict().items()}


def fit(task: Task, network: torch.nn.Module, optimizer: torch.optim.Optimizer, epochs: int,
        patience: int | None = None, seed: int = 0, checkpoint=None, progress=None, desc: str = "train",
        count_key: str | None = None) -> dict:
    """Train ``network`` with ``optimizer`` on ``task`` (module docstring); the network ends with
    the best weights, in evaluation mode. Returns ``history``, ``best_epoch``, ``best_val_loss``."""
    checkpoint = None if checkpoint is None else Path(checkpoint)
    state = _resume(task, network, optimizer, checkpoint)
    history, best = state["history"], state["best"]
    bar = progress_bar(range(state["epoch"], epochs), desc=desc,
                       disable=None if progress is None else not progress)
    for epoch in bar:
        if patience is not None and epoch - best["epoch"] >= patience:
            break
        tic, cpu = time.perf_counter(), time.process_time()
        network.train()
        total, seen = 0.0, 0
        for batch in task.batches(np.random.default_rng([seed, epoch])):
            optimizer.zero_grad()
            loss, n = task.batch_loss(batch)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * n
            seen += n
        val = task.validation_loss()
        history.append({"epoch": epoch + 1, "train_loss": total / max(seen, 1), "val_loss": val,
                        "seconds": time.perf_counter() - tic, "cpu_seconds": time.process_time() - cpu})
        if count_key is not None:
            history[-1][count_key] = seen
        if val < best["val_loss"]:
            best = {"epoch": epoch + 1, "val_loss": val, "state": state_copy(network)}
        if checkpoint is not None:
            _save(checkpoint, task, network, optimizer, epoch + 1, history, best)
    network.load_state_dict(best["state"])
    network.eval()
    return {"history": history, "best_epoch": best["epoch"], "best_val_loss": best["val_loss"]}


def _resume(task, network, optimizer, checkpoint) -> dict:
    fresh = {"epoch": 0, "history": [], "best": {"epoch": 0, "val_loss": math.inf, "state": state_copy(network)}}
    if checkpoint is None or not checkpoint.is_file():
        return fresh
    meta, tensors = model_file.read(checkpoint, CHECKPOINT_FORMAT, "checkpoint", CHECKPOINT_META)
    if meta["fingerprint"] != to_jsonable(task.fingerprint()):
        raise InputError("checkpoint from a different run (data, model or settings differ); "
                         "delete it or choose another checkpoint", checkpoint)
    groups = {"model": {}, "best": {}, "optim": {}}
    for key, value in tensors.items():
        group, _, name = key.partition("/")
        index = name.split(".", 1)[0]
        if group not in groups or (group == "optim" and not (index.isdigit() and "." in name)):
            raise InputError(f"unexpected tensor {key!r} (expected model/..., best/..., optim/<n>.<field>)",
                             checkpoint)
        groups[group][name] = value
    model_file.check_tensors(checkpoint, groups["model"], network.state_dict())
    model_file.check_tensors(checkpoint, groups["best"], network.state_dict())
    mine = optimizer.state_dict()["param_groups"]
    theirs = meta["param_groups"]
    if len(theirs) != len(mine) or any(not isinstance(t, dict) or t.keys() != m.keys() or t["params"] != m["params"]
                                       for t, m in zip(theirs, mine, strict=False)):
        raise InputError("key 'metadata.param_groups': expected the optimiser's parameter groups of this run",
                         checkpoint)
    network.load_state_dict(groups["model"])
    optim = {"state": {}, "param_groups": meta["param_groups"]}
    for name, value in groups["optim"].items():
        index, field = name.split(".", 1)
        optim["state"].setdefault(int(index), {})[field] = value
    optimizer.load_state_dict(optim)
    best = {"epoch": meta["best_epoch"], "val_loss": meta["best_val_loss"], "state": groups["best"]}
    return {"epoch": meta["epoch"], "history": meta["history"], "best": best}


CHECKPOINT_META = Schema((
    Key("fingerprint", object, help="the task's fingerprint"),
    Key("epoch", int, help="epochs done", lo=0),
    Key("history", list, help="one record per epoch", items=dict),
    Key("best_epoch", int, help="epoch of the best weights", lo=0),
    Key("best_val_loss", float, help="their validation loss", finite=False),
    Key("param_groups", list, help="the optimiser's parameter groups", items=dict),
))
"""Metadata of a training checkpoint (:func:`fit`)."""


def _save(checkpoint, task, network, optimizer, epoch, history, best) -> None:
    tensors = {f"model/{k}": v for k, v in network.state_dict().items()}
    tensors.update({f"best/{k}": v for k, v in best["state"].items()})
    optim = optimizer.state_dict()
    for index, values in optim["state"].items():
        for field, value in values.items():
            tensors[f"optim/{index}.{field}"] = torch.as_tensor(value)
    meta = {"format": CHECKPOINT_FORMAT, "epoch": epoch, "history": history, "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"], "param_groups": optim["param_groups"],
            "fingerprint": task.fingerprint()}
    model_file.write(checkpoint, tensors, meta)
