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


def roll_back(replay, history, verdict, chunk_costs, done, per, unit, costs):
    """Keep the last parameters whose cost was good, replaying up to them.

    Args:
        replay: ``replay(state, num_steps)``, the run's steps from a state.
        history: [(state, steps done)] of chunk starts, oldest first; the last
            is the start of the chunk that went bad.
        verdict: (k, reason): chunk_costs[k] is the first bad cost (k =
            len(chunk_costs): the parameters at the chunk's end are bad).
        chunk_costs: costs of the iterations the chunk completed; entry i is J
            of iteration done // per + i.
        done: steps done before the chunk; per: steps per iteration.
        unit: what an iteration is called ("iteration", "epoch").
        costs: the list of kept cost arrays, trimmed here to match.

    The kept parameters are those after iteration done // per + k - 1 (whose
    cost was good), replayed from the latest chunk start at or before it (or
    the earliest one kept, at the start of a resumed run).

    Returns:
        (kept state, steps done, reason, message).
    """
    k, reason = verdict
    first = done // per  # chunk_costs[0] is this iteration's
    if k == len(chunk_costs):
        what = f"parameters are not finite after {unit} {first + k - 1}"
    else:
        word = "not finite" if reason == "non-finite" else "diverging"
        what = f"cost is {word} at {unit} {first + k} ({chunk_costs[k]:.4g})"
    target = max((first + k - 1) * per, history[0][1])
    base, base_steps = [h for h in history if h[1] <= target][-1]
    kept_state = replay(base, target - base_steps)
    kept = np.concatenate([*costs, chunk_costs], axis=-1)[..., : target // per]
    costs[:] = [kept]
    hint = " Lower the learning rate." if k < len(chunk_costs) else ""
    after = f"{target // per} {unit}s"
    if target % per:
        after += f" and {target % per} minibatch steps"
    message = (
        f"{what}: stopping; keeping the parameters after {after}, the last "
        f"whose cost was finite and at most {DIVERGENCE_FACTOR:g} x max(J_0, 1).{hint}"
    )
    return kept_state, target, reason, message
