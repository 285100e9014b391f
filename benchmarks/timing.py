"""Timing helper shared by the benchmark scripts (imported as ``from timing import timings`` when
a script in this folder is run as ``python benchmarks/NAME.py``)."""

import time

import numpy as np


def timings(step, repeats: int, warmup: int = 2) -> dict:
    """Wall and CPU (process) seconds of ``step()`` over ``repeats`` calls after ``warmup`` calls:
    ``wall_median``, ``wall_best``, ``cpu_median``, ``cpu_best``."""
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(repeats):
        start, tic = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - tic)
    return {"wall_median": float(np.median(wall)), "wall_best": float(np.min(wall)),
            "cpu_median": float(np.median(cpu)), "cpu_best": float(np.min(cpu))}
