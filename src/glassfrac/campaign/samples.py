"""The samples of a campaign: one :class:`SampleSpec` per sample, seeded by its index.

Samples are numbered 0, 1, ... through the ``[[samples]]`` groups in order, and within a
group through its disorder values in order (``count`` samples each). Every random choice of
sample ``i`` descends from ``numpy.random.SeedSequence([campaign seed, i])``: the generator
seed is its first spawned child, the disorder drawn from ``mu2_range`` its second. A sample's
result therefore depends only on the config and its index, never on which worker ran it or
in which order.
"""

from dataclasses import dataclass, field

import numpy as np

from glassfrac.campaign.config import CampaignConfig, SampleGroup


@dataclass(frozen=True)
class SampleSpec:
    """What one sample is: its index and id, the generator's inputs and its seed; ``replica``
    counts the samples before it in its group with the same disorder value (0, 1, ...); ``tests`` are its
    group's tests (None: all of the campaign's)."""

    index: int
    sample_id: str
    group: int
    kind: str
    rings: tuple
    distribution: str
    seed: int
    mu2: float | None = None
    sigma_factor: float | None = None
    generator: str | None = None
    options: dict = field(default_factory=dict)
    replica: int = 0
    tests: tuple | None = None

    def keys(self) -> dict:
        """Key-value pairs of the store row describing the sample's inputs."""
        out = {"sample_id": self.sample_id, "index": self.index, "group": self.group, "kind": self.kind,
               "nx": int(self.rings[0]), "ny": int(self.rings[1]), "distribution": self.distribution,
               "seed": self.seed}
        if self.mu2 is not None:
            out["mu2_target"] = self.mu2
        if self.sigma_factor is not None:
            out["sigma_factor"] = self.sigma_factor
        return out


def sample_id(index: int) -> str:
    """The id of sample ``index`` (``s000042``): sorts like the index, never reads as a number."""
    return f"s{index:06d}"


def sample_seeds(campaign_seed: int, index: int, n: int = 2) -> list[int]:
    """``n`` independent 32-bit seeds of sample ``index`` (module docstring)."""
    children = np.random.SeedSequence([int(campaign_seed), int(index)]).spawn(n)
    return [int(c.generate_state(1, np.uint32)[0]) for c in children]


def expand(config: CampaignConfig) -> list[SampleSpec]:
    """All samples of ``config`` in index order."""
    specs = []
    for g, group in enumerate(config.groups):
        if group.mu2_range is not None:
            values = [("mu2", None)] * group.count
        else:
            name = "mu2" if group.mu2 is not None else "sigma_factor"
            values = [(name, v) for v in (group.mu2 or group.sigma_factor) for _ in range(group.count)]
        for k, (name, value) in enumerate(values):
            index = len(specs)
            seed, draw = sample_seeds(config.seed, index)
            if value is None:
                lo, hi = group.mu2_range
                value = float(np.random.default_rng(draw).uniform(lo, hi))
            specs.append(SampleSpec(
                index=index, sample_id=sample_id(index), group=g, kind=group.kind, rings=tuple(group.rings),
                distribution=group.distribution, seed=seed, generator=group.generator,
                options=dict(group.options), replica=k % group.count, tests=group.tests, **{name: value},
            ))
    return specs


def extends(old: dict, new: dict) -> bool:
    """Whether the campaign definition ``new`` (:meth:`CampaignConfig.definition`) is ``old`` with samples added
    after its last one: every other part equal, every sample of ``old`` kept with its index and inputs (raising
    the ``count`` of the last group of a ``mu2_range`` or of one disorder value does this; raising it where a
    group has several values renumbers the samples after the first value, and does not)."""
    if len(new["samples"]) < len(old["samples"]) or any(old[k] != new.get(k) for k in old if k != "samples"):
        return False

    def specs(definition):
        groups = tuple(SampleGroup(**{k: tuple(v) if isinstance(v, list) else v for k, v in g.items()})
                       for g in definition["samples"])
        return expand(CampaignConfig(definition["name"], definition["seed"], groups))

    before, after = specs(old), specs(new)
    return len(after) > len(before) and after[:len(before)] == before
