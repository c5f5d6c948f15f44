"""Protocol ``my.rate``: firing rate of a leaky integrate-and-fire population against its input current."""

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from brian2 import Network, NeuronGroup, Quantity, SpikeMonitor, ms, second

from b2models.backend import Session
from b2models.protocol import Claim, Protocol


@dataclass
class RateParams:
    n: int = 50  # neurons
    tau: Quantity = field(default_factory=lambda: 10 * ms)  # membrane time constant
    duration: Quantity = field(default_factory=lambda: 1 * second)  # one run
    drives: tuple = (0.5, 1.0, 1.5, 2.0, 3.0)  # input current, in units of the threshold


def quick(p: RateParams) -> RateParams:
    return dataclasses.replace(p, duration=0.2 * second)


def run(ctx) -> dict:
    p: RateParams = ctx.params
    with Session(ctx.backend, name="my_rate", key=(p.n, repr(p.tau), repr(p.duration)),
                 threads=ctx.threads) as session:
        cells = NeuronGroup(p.n, "dv/dt = (I - v) / tau : 1\nI : 1\ntau : second (shared, constant)",
                            threshold="v > 1", reset="v = 0", method="exact", name="cells")
        cells.tau = p.tau
        spikes = SpikeMonitor(cells, name="spikes")
        session.build(Network(cells, spikes), p.duration)
        rates = []
        for k, drive in enumerate(ctx.progress(p.drives, desc="drives")):
            session.run(run_args={cells.I: drive}, seed=ctx.seed * 1000 + k)
            rates.append(spikes.num_spikes / p.n / float(p.duration / second))
            ctx.log(f"drive {drive}: {rates[-1]:.1f} Hz")
    rates = np.array(rates)
    metrics = {"rate_max_hz": float(rates.max()), "monotonic": bool(np.all(np.diff(rates) >= 0))}
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(drives=np.array(p.drives), rates=rates)

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(p.drives, rates, "o-")
    ax.set(xlabel="input current (threshold units)", ylabel="rate (Hz)")
    ctx.writer.save_figure(fig, "rate_curve")
    return metrics


PROTOCOL = Protocol(
    name="my.rate",
    paper="mine",
    summary="rate of a LIF population against its input current",
    params=RateParams,
    quick=quick,
    run=run,
    figures=["rate_curve"],
    claims=[Claim("monotonic", "rate grows with the input", "yes", "yes", lambda v: v is True, "{}")],
)
