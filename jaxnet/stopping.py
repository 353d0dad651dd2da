"""When a run must stop, and what it keeps: the divergence rules.

- "non-finite": a cost or the parameters stopped being finite.
- "diverged": the cost rose above ``DIVERGENCE_FACTOR`` x max(J_0, 1), with
  J_0 the run's first cost (a learning rate far too large: J jumps from 0.69
  to 1e8 without ever overflowing). Healthy runs stay far below: J falls.

In both cases the run keeps the last parameters whose cost was finite and not
diverged: ``roll_back`` replays the chunk deterministically (the same keys)
up to that iteration, so nothing runs twice in the hot loop.
"""

import numpy as np

DIVERGENCE_FACTOR = 100.0


def first_bad(costs: np.ndarray, reference: float) -> tuple[int, str] | None:
    """Index and reason of the first non-finite or diverged cost, else None."""
    finite = np.isfinite(costs)
    limit = DIVERGENCE_FACTOR * max(abs(reference), 1.0)
    bad = ~finite | (np.abs(np.where(finite, costs, 0)) > limit)
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    return i, ("non-finite" if not finite[i] else "diverged")


def roll_back(replay, previous, state, done, verdict, chunk_costs, unit, costs):
    """Keep the last parameters whose cost was good, replaying up to them.

    chunk_costs[i] is J at iteration done + i; with the first bad one at index
    k, the kept parameters are those of iteration done + k - 1 (whose cost was
    good), replayed from the chunk's start, or from the previous chunk's start
    when k = 0. ``costs`` (the list of kept cost arrays) is trimmed to match.

    Returns:
        (kept state, iterations done, reason, message).
    """
    k, reason = verdict
    if k == len(chunk_costs):
        what = f"parameters are not finite after {unit} {done + k - 1}"
    else:
        word = "not finite" if reason == "non-finite" else "diverging"
        what = f"cost is {word} at {unit} {done + k} ({chunk_costs[k]:.4g})"
    if k >= 1:
        keep = done + k - 1
        kept_state = replay(state, k - 1)
        costs.append(chunk_costs[: k - 1])
    else:  # the chunk's first cost is bad: step back into the previous chunk
        prev_state, prev_done = previous
        keep = max(done - 1, prev_done)
        kept_state = replay(prev_state, keep - prev_done)
        if keep < done:
            costs[-1] = costs[-1][..., : costs[-1].shape[-1] - (done - keep)]
    hint = " Lower the learning rate." if k < len(chunk_costs) else ""
    message = (
        f"{what}: stopping; keeping the parameters after {keep} {unit}s, the last "
        f"whose cost was finite and at most {DIVERGENCE_FACTOR:g} x max(J_0, 1).{hint}"
    )
    return kept_state, keep, reason, message
