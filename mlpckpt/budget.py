"""``Budget(max_bytes)``: the search over schedules that fit a byte budget,
and a dynamic program over the real layer sizes.

:func:`search` takes the cheapest of plain backprop, the binomial schedules
and the segment schedules that fit, each judged by the exact simulation of
:mod:`mlpckpt.memory`, then lets :func:`dp_actions` try to beat it on chains
of uneven widths (paper_notes/checkpointing.md, section 6).

Chains with uneven widths want their checkpoints at narrow layers, which
``Segments`` and ``Revolve`` (uniform by construction) do not seek out. This
module plans schedules of the following shape (paper_notes/checkpointing.md,
section 6, eq. C13):

* the first pass stores checkpoints ``0 = c_0 < c_1 < ... < c_m < n`` (each
  the end of a keep-none forward run);
* the top part ``[c_m, n)`` and the loss are reversed by a binomial ``H``
  task, then each ``[c_i, c_{i+1})`` by a binomial ``G`` task, with as many
  slots as the memory left at that moment holds (slots sized by the widest
  activation inside the part).

``F(c, u)``, the fewest evaluations above the held checkpoint ``c`` when the
checkpoints up to ``c`` use ``u`` memory units, obeys

    F(c, u) = min( H(n - c, s_top(c, u)),
                   min_{c < c' < n} [ (c' - c) + G(c' - c, s(c, c', u)) + F(c', u + units(a[c'])) ] )

with ``G(l, s) = t(l, s + 1)``, ``H(l, s) = t(l + 1, s + 1)`` (eqs. C5, C8,
C9). Memory is discretised into :data:`LEVELS` units (rounded up, so the
plan stays feasible) and the working set of a part is bounded generously
(five of its widest arrays plus temporaries); the schedule it returns is
then checked by the exact simulation of :mod:`mlpckpt.memory`, and
``Budget`` keeps it only if it fits and beats the uniform candidates.
Cost: ``O(n^2 * LEVELS)`` vectorised work, about 0.6 s a round for
``n = 1000`` (a whole ``Budget`` plan with uneven widths: 1-4 s there).
"""

from dataclasses import dataclass

import numpy as np

from . import memory
from ._validate import parse_bytes
from .actions import FORWARD, count_forward_evals
from .strategies import StoreAll, Strategy, binomial_actions, revolve_actions, segments_actions

__all__ = ["Budget", "LEVELS", "MAX_LAYERS", "search", "t_table", "dp_actions"]

#: memory units of the discretisation
LEVELS = 64
#: chains longer than this are planned without the dynamic program
MAX_LAYERS = 1200

_INF = np.iinfo(np.int64).max // 4


@dataclass(frozen=True)
class Budget(Strategy):
    """The fewest forward evaluations whose predicted peak fits ``max_bytes``.

    ``max_bytes`` is an int or a string with a unit (``"50MiB"``, ``"1GB"``;
    KiB/MiB/GiB are powers of 2, KB/MB/GB of 10). The budget is checked
    against the same accounting as :func:`mlpckpt.plan` (:mod:`mlpckpt.memory`),
    with the net's real layer widths, for the exact call (loss, ``out=``,
    ``fuse_update``), so the measured tracemalloc peak stays under it.

    The search (:func:`search`; paper_notes/checkpointing.md, section 6)
    takes the cheapest of plain backprop, the binomial ``Revolve(s)`` with
    the most slots that fit and every ``Segments(k)`` that fits, each judged
    by the exact simulation; on uneven widths a dynamic program over the
    real sizes may then place checkpoints at narrow layers. On uniform
    widths this is never worse than ``Revolve`` at the same bytes. A budget
    below the smallest schedule's peak raises ``ValueError`` naming the
    smallest budget that works.
    """

    max_bytes: int

    def __post_init__(self):
        object.__setattr__(self, "max_bytes", parse_bytes(self.max_bytes, "max_bytes"))

    def actions(self, call):
        return search(self.max_bytes, call)


def search(budget, call):
    """Actions of the cheapest schedule whose simulated peak fits ``budget``
    bytes for ``call`` (paper_notes/checkpointing.md, section 6).

    Raises
    ------
    ValueError
        When nothing fits, naming the smallest budget that works.
    """
    n, sizes, batch, itemsize = call.n_layers, call.sizes, call.batch, call.itemsize

    def peak(actions):
        return memory.simulate(actions, call)["peak_bytes"]

    store_all = StoreAll().actions(call)
    if peak(store_all) <= budget:
        return store_all
    # Binomial schedules: with uneven widths the peak need not grow with
    # the slots, so the first few slot counts are all simulated; beyond,
    # the peak grows with the slots and the most that fit are bisected.
    best, best_evals, floor = None, None, None
    dense = min(n - 1, 48)
    for slots in range(dense + 1):
        acts = revolve_actions(n, slots)
        used = peak(acts)
        floor = used if floor is None else min(floor, used)
        if used <= budget:
            evals = count_forward_evals(acts)
            if best is None or evals < best_evals:
                best, best_evals = acts, evals
    if best is None:
        raise ValueError(
            f"strategy: Budget({budget} B = {budget / 2**20:.3f} MiB) is below the "
            f"smallest feasible budget for this net and call, {floor} B = "
            f"{floor / 2**20:.3f} MiB (the leanest binomial schedule)"
        )
    lo, hi = dense + 1, n - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        acts = revolve_actions(n, mid)
        if peak(acts) <= budget:
            evals = count_forward_evals(acts)
            if evals < best_evals:
                best, best_evals = acts, evals
            lo = mid + 1
        else:
            hi = mid - 1
    # Segments(k) cost 2n - k - (m - 1) (eq. C3) and hold about k - 1 + m
    # arrays (eq. C2): try those cheaper than the binomial one, cheapest
    # first, skipping those whose held arrays alone exceed the budget.
    smallest_act = min(sizes[1:]) * batch * itemsize
    candidates = []
    for k in range(1, n + 1):
        m = -(-n // k)
        evals = 2 * n - k - (m - 1)
        if evals < best_evals and (k - 1 + m) * smallest_act <= budget:
            candidates.append((evals, k))
    for evals, k in sorted(candidates):
        acts = segments_actions(n, k)
        if peak(acts) <= budget:
            best, best_evals = acts, evals
            break
    if len(set(sizes[1:])) > 1:  # uneven widths: checkpoints where they are cheap
        best = _heterogeneous(best, best_evals, peak, budget, call)
    return best


def _heterogeneous(best, best_evals, peak, budget, call):
    """Improve on ``best`` with :func:`dp_actions`.

    Its memory model is conservative, so the budget it is given is
    raised (at most 4 rounds) towards the one its schedule really uses."""
    if call.n_layers > MAX_LAYERS:
        return best
    virtual = budget
    for _ in range(4):
        acts = dp_actions(call, virtual)
        if acts is None:
            break
        used = peak(acts)
        if used <= budget:
            evals = count_forward_evals(acts)
            if evals < best_evals:
                best, best_evals = acts, evals
            if used > 0.98 * budget:
                break
            virtual *= budget / used
        else:
            virtual = (virtual + budget) / 2 if virtual > budget else 0.9 * virtual
    return best


def t_table(n):
    """``T[l, S] = t(l, S)`` (eq. C5) for ``0 <= l, S <= n + 1``; ``S = 0`` is
    infeasible (``_INF``) except for ``l <= 1``, and ``S >= l`` costs
    ``l - 1``."""
    size = n + 2
    T = np.full((size, size), _INF, dtype=np.int64)
    lengths = np.arange(size, dtype=np.int64)
    T[:2, :] = 0
    for snaps in range(1, size):
        b = [1]  # b[r] = C(snaps + r, snaps)
        while b[-1] < size:
            r = len(b)
            b.append(b[-1] * (snaps + r) // r)
        b = np.array(b, dtype=np.int64)
        r = np.searchsorted(b, lengths[2:], side="left")
        T[2:, snaps] = r * lengths[2:] - b[r] * r // (snaps + 1)
    return T


def dp_actions(call, budget):
    """Actions of the dynamic program's schedule for ``call`` within
    ``budget`` bytes (a float: the search scales it), or None if it finds none.
    """
    sizes, batch, itemsize = call.sizes, call.batch, call.itemsize
    out, fuse_update = call.out, call.fuse_update
    n = call.n_layers
    if n < 2 or n > MAX_LAYERS:
        return None
    over = memory.ARRAY_OVERHEAD
    A = np.array([0] + [s * batch * itemsize + over for s in sizes[1:]], dtype=np.int64)
    if out or fuse_update:
        grads_from = np.zeros(n + 1, dtype=np.int64)
    else:
        per_layer = [memory.grad_pair_bytes(sizes[k + 1], sizes[k], itemsize) for k in range(n)]
        grads_from = np.concatenate([np.cumsum(per_layer[::-1])[::-1], [0]]).astype(np.int64)
    base = memory.fixed_bytes(call)
    if fuse_update:
        base += 2 * memory.shared_grad_bytes(sizes, itemsize) + 1024  # buffers + scratch
    slack = memory.UFUNC_BUFSIZE * itemsize + memory.UFUNC_FIXED + memory.BACKWARD_TRANSIENT + 4096
    loss_tr = memory.loss_transient(call.loss, call.output, sizes[n], batch, itemsize, call.targets)
    room = budget - base
    if room <= 0:
        return None
    unit = room / LEVELS
    units = np.ceil(A / unit).astype(np.int64)  # a checkpoint's cost, rounded up
    T = t_table(n)
    levels = np.arange(LEVELS, dtype=np.int64)[:, None]
    used = np.ceil(levels * unit).astype(np.int64)

    F = np.full((n + 1, LEVELS), _INF, dtype=np.int64)
    choice = np.full((n + 1, LEVELS), -1, dtype=np.int64)  # next checkpoint, -1: top part
    slot_of = np.zeros((n + 1, LEVELS), dtype=np.int64)  # slots of the part chosen there
    for c in range(n - 1, -1, -1):
        # top part [c, n) with the loss: H(n - c, s) = t(n - c + 1, s + 1)
        top_widest = A[c + 1 : n + 1].max()
        free = room - used[:, 0] - (loss_tr + 5 * max(top_widest, A[c]) + slack) - grads_from[c]
        interior = A[c + 1 : n].max() if c + 1 < n else 0
        slots = _slots(free, interior, n - c)
        best = np.where(free >= 0, T[n - c + 1, slots + 1], _INF)
        best_choice = np.full(LEVELS, -1, dtype=np.int64)
        best_slots = slots
        if c + 1 < n:
            cs = np.arange(c + 1, n)
            seg = A[c + 1 : n]
            widest = np.maximum(np.maximum.accumulate(seg), A[c])  # max A[c..c']
            inner = np.concatenate([[0], np.maximum.accumulate(seg)[:-1]])  # max A[c+1..c'-1]
            free = room - used - (5 * widest + slack)[None, :] - grads_from[c]
            length = cs - c
            slots = _slots(free, inner[None, :], length[None, :])
            g = np.where(free >= 0, T[length[None, :], slots + 1], _INF)
            nxt = levels + units[cs][None, :]
            ok = nxt < LEVELS
            rest = np.where(ok, F[cs[None, :], np.minimum(nxt, LEVELS - 1)], _INF)
            total = np.where((g < _INF) & (rest < _INF), length[None, :] + g + rest, _INF)
            j = np.argmin(total, axis=1)
            cand = total[np.arange(LEVELS), j]
            better = cand < best
            best = np.where(better, cand, best)
            best_choice = np.where(better, cs[j], best_choice)
            best_slots = np.where(better, slots[np.arange(LEVELS), j], best_slots)
        F[c] = best
        choice[c] = best_choice
        slot_of[c] = best_slots
    if F[0, 0] >= _INF:
        return None
    # Rebuild: first pass to each checkpoint, then H on top, G below (stack).
    first, tasks, c, lvl = [], [], 0, 0
    while choice[c, lvl] >= 0:
        nxt = int(choice[c, lvl])
        tasks.append(("G", c, nxt - c, int(slot_of[c, lvl])))
        first.append((FORWARD, c, nxt, 0))
        lvl += int(units[nxt])
        c = nxt
    tasks.append(("H", c, n - c, int(slot_of[c, lvl])))
    return binomial_actions(tasks, out=first)


def _slots(free, widest_inner, length):
    """Checkpoint slots that ``free`` bytes hold, capped at ``length - 1``
    (more are useless); 0 where nothing fits."""
    free = np.maximum(free, 0)
    widest = np.maximum(widest_inner, 1)
    s = np.where(np.asarray(widest_inner) > 0, free // widest, length)
    return np.minimum(s, np.maximum(np.asarray(length) - 1, 0)).astype(np.int64)
