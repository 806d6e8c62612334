"""Long chains: one search over the first pass's checkpoints that gives a
feasible schedule and, with memory rounded the other way, a proved lower
bound on the evaluations of every schedule (paper_notes/checkpointing.md,
section 8, eqs. C18-C23).

Every schedule's first pass holds checkpoints ``0 = c_0 < c_1 < ... < c_m``
at the loss; the chain falls into parts ``(c_i, c_{i+1})`` (the last one
ends at ``n``), and after the loss each part's inner activations are
computed again from the part's own checkpoints. A part is priced by the
*unit model*: reverse ``l`` layers with at most ``u`` of its inner
activations alive at once. Its optimum obeys (eqs. C18, C19)

    Wc(l, u) = min_j [ j + Wc(l - j, u - 1) + Wc(j, u) ]    (the top counted)
    W(l, u)  = min_j [ j + W(l - j, u - 1)  + Wc(j, u) ]    (the top not counted)

(:func:`unit_tables`). The search over checkpoints (eq. C21) then runs
twice on the memory model's tables:

* **upper**: each part's ``u`` from the widest inner activation, the
  largest backward state and transient in the part, checkpoint bytes
  rounded *up* to :data:`LEVELS` units: the schedule it builds fits
  (and is checked by :func:`mlpckpt.planning._memory.simulate`);
* **lower**: ``u`` from the narrowest inner activation and the smallest
  backward state, no transients, bytes rounded *down*, one unit more for
  work done ahead of the part's own turn (eq. C22): no schedule within the
  budget takes fewer evaluations than it says.

Cost: ``O(n * MAX_PART * LEVELS)`` vectorised work; tables of
``n * LEVELS`` and ``CAP * MAX_PART`` small integers.
"""

import numpy as np

from ._actions import BACKWARD, FORWARD, LOSS

__all__ = ["LEVELS", "CAP", "MAX_PART", "unit_tables", "search", "unit_actions"]

#: memory units of the discretisation
LEVELS = 64
#: most inner activations alive in one part that the tables cover
CAP = 64
#: longest part the search places
MAX_PART = 512

_INF = 2**30


def unit_tables(length, cap=CAP):
    """The unit model's optimal costs and first splits (eqs. C18, C19).

    Returns
    -------
    W, Wc : ndarray, shape (cap + 1, length + 1), int32
        Fewest evaluations to reverse ``l`` layers with at most ``u`` inner
        activations alive, the top not counted (``W``) or counted until
        its step (``Wc``); ``_INF`` where impossible.
    SW, SWc : ndarray, same shape, int16
        The first checkpoint ``j`` of an optimal schedule.
    """
    shape = (cap + 1, length + 1)
    W, Wc = np.full(shape, _INF, np.int64), np.full(shape, _INF, np.int64)
    SW, SWc = np.zeros(shape, np.int16), np.zeros(shape, np.int16)
    W[:, 1], Wc[1:, 1] = 0, 0
    for u in range(1, cap + 1):
        # Wc: a forward from the bottom has the top alive too (j = 1 needs
        # 2 units, longer ranges 3); W: 1 and 2.
        for table, split, prev, lower, need1 in ((Wc, SWc, Wc[u - 1], Wc[u], 2), (W, SW, W[u - 1], Wc[u], 1)):
            if u < need1:
                continue
            row = table[u]
            for l in range(2, length + 1):
                top = l if u >= need1 + 1 else 2  # j >= 2 needs one unit more
                j = np.arange(1, top)
                cand = j + prev[l - j] + lower[j]
                k = int(np.argmin(cand))
                if cand[k] < _INF:
                    row[l], split[u, l] = cand[k], k + 1
    np.minimum(W, _INF, out=W)
    np.minimum(Wc, _INF, out=Wc)
    return W.astype(np.int32), Wc.astype(np.int32), SW, SWc


def search(m, budget, cells=2**18, reach=4):
    """Both runs of the checkpoint search for the model ``m`` within ``budget``.

    Parameters
    ----------
    m : Model
        :func:`mlpckpt.planning._memory.model` of the call.
    budget : int
        Bytes.
    cells : int
        Size of the search's table (checkpoints x memory levels); the
        levels and the longest part follow from it and the budget (eq. C23).

    Returns
    -------
    dict
        ``actions`` (a schedule that fits, or None), ``evals`` (its forward
        evaluations, or None) and ``lower_bound`` (no schedule within the
        budget evaluates fewer layers; None when the bound proves that
        nothing fits).
    """
    n = m.n_layers
    room = budget - m.base
    none = {"actions": None, "evals": None, "lower_bound": None}
    if room <= 0:
        return none
    act = np.frombuffer(m.act, dtype=np.int64)
    mean = max(1.0, float(act[1:].mean()))
    # parts about n * mean / room long hold the budget's worth of checkpoints;
    # allow four times that, and levels of a fraction of an activation
    length = int(min(n, MAX_PART, max(16, reach * n * mean / room)))
    levels = int(max(8, min(cells // n, 8 * room / mean, 4096)))
    # the unit tables: as many units as the budget could ever give a part,
    # as long as the window
    cap = int(min(CAP, room // max(1, act[1:].min()) + 2))
    W, Wc, SW, SWc = unit_tables(length, cap)
    top, fwd, back = (np.frombuffer(t, dtype=np.int64) for t in (m.top, m.fwd, m.back))
    k = np.arange(n + 1)
    state_lo = top - np.where((k > 0) & (k < n), act, 0)  # state t besides a[t]
    step_tr = np.concatenate([fwd - act[1:], [0]])  # a forward step's temporary
    pair = np.concatenate([[0], act[1:n] + fwd[1:n]])  # evaluation from the intermediate a[i]
    # above[c']: the smallest state after the part ending at c' (eq. C22:
    # work ahead of a part's turn can only pay where that is smaller)
    above = np.concatenate([np.minimum.accumulate(state_lo[:0:-1])[::-1], [_INF]])
    unit = room / levels
    lvl = np.arange(levels, dtype=np.int64)[:, None]
    used_hi, used_lo = np.ceil(lvl * unit).astype(np.int64), np.floor(lvl * unit).astype(np.int64)
    units_hi, units_lo = np.ceil(act / unit).astype(np.int64), np.floor(act / unit).astype(np.int64)
    # F[c'] for c' in (c, c + length]: rolling windows, row c' % (length + 1)
    F_hi = np.full((length + 1, levels), _INF, np.int64)
    F_lo = np.full((length + 1, levels), _INF, np.int64)
    choice = np.zeros((n, levels), np.int16)  # the next checkpoint, as c' - c
    slots = np.zeros((n, levels), np.int8)  # the part's units
    suffix = np.full(levels, n, np.int64)  # min over c' > c + length of c' + F_lo[c'] (F_lo[n] = 0)
    # the narrowest inner activation and the smallest state above c, for the
    # parts that end beyond the window
    act_min = np.concatenate([np.minimum.accumulate(act[n - 1 : 0 : -1])[::-1], [_INF, _INF]])
    act_min = np.concatenate([[act_min[0]], act_min])  # act_min[c + 1] = min act[c + 1 .. n - 1]
    state_min = np.concatenate([[0], np.minimum.accumulate(state_lo[:0:-1])[::-1], [_INF]])
    # the cost per layer of any part longer than the window, from the whole
    # chain's narrowest and smallest (valid for every c): for each base length
    # b, W(l, u) >= (l - b + 1) * (W(b, u) + 1) / b - 1 for every l (eq. C23)
    u = np.maximum((room - used_lo[:, 0] - state_min[1]) // max(1, act_min[1]) + 1, 0)
    bases = [length]  # the tables' longest part (longer bases would need longer tables)
    slope = np.array([np.where(u >= min(cap, b - 1), b, W[np.clip(u, 0, cap), b] + 1) / b for b in bases])
    offset = np.array(bases, dtype=np.float64)[:, None] - 1
    linear = slope * n  # per base: min over c' > c + length of slope * c' + F_lo[c'] (F_lo[n] = 0)
    # levels are searched in chunks: about 16 temporaries of chunk x length
    # int64 take an eighth of the budget
    chunk = int(max(1, min(levels, budget // (8 * 16 * 8 * length))))
    for c in range(n - 1, -1, -1):
        stop = min(n, c + length)
        ends = np.arange(c + 1, stop + 1)
        l = ends - c
        at_top = ends == n
        widths = act[c + 1 : stop]  # inner a[c+1 .. stop-1]
        w_hi = np.maximum(np.concatenate([[1], np.maximum.accumulate(widths)]), 1)
        w_lo = np.maximum(np.concatenate([[1], np.minimum.accumulate(widths)]), 1)
        # states c .. c' (state c: after the part's last step, its update)
        s_hi = np.maximum(top[ends], np.maximum.accumulate(state_lo[c:stop]))
        s_lo = np.minimum.accumulate(state_lo[c + 1 : stop + 1])
        tr = np.maximum(np.maximum.accumulate(np.maximum(step_tr[c:stop], back[c:stop])), m.update or 0)
        tr = np.where(at_top, np.maximum(tr, m.loss), tr)
        first = np.maximum.accumulate(np.concatenate([[fwd[c]], pair[c + 1 : stop]]))
        first = np.where(at_top, np.maximum(first, act[n] + m.loss), first)
        # below the top part, the part's top a[c'] is alive until its first
        # step: the lower run's Wc counts it, at the narrower of it and the inner ones
        width = np.maximum(np.where(at_top, w_lo, np.minimum(w_lo, act[np.minimum(ends, n - 1)])), 1)
        ahead = (s_lo > above[ends])[None, :]
        last = l[None, :] - np.where(at_top, 1, 0)[None, :]
        window = ends % (length + 1)
        row, new_lo = c % (length + 1), np.empty(levels, np.int64)
        if stop < n and c + length + 1 < n:  # F_lo[c + length + 1] leaves the window now
            suffix = np.minimum(suffix, c + length + 1 + F_lo[row])
            linear = np.minimum(linear, slope * (c + length + 1) + F_lo[row][None, :])
        for lo in range(0, levels, chunk):
            sl = slice(lo, lo + chunk)
            rows = np.arange(min(chunk, levels - lo))
            # upper run: the widest, the largest, rounded up
            free = room - used_hi[sl] - (s_hi + tr)[None, :]
            u = np.minimum(free // w_hi[None, :], cap)
            ok = (free >= 0) & (room - used_hi[sl] >= first[None, :])
            cost = np.where(ok, W[np.clip(u, 0, cap), l[None, :]], _INF)
            total = np.minimum(cost + _rest(F_hi, window, at_top, lvl[sl] + units_hi[ends][None, :]), _INF)
            best = np.argmin(total, axis=1)
            F_hi[row, sl] = total[rows, best]
            choice[c, sl], slots[c, sl] = l[best], np.clip(u[rows, best], 0, cap)
            # lower run (eq. C22): the narrowest, the smallest, rounded down, and
            # one unit more where work ahead of the part's turn could pay
            free = room - used_lo[sl] - s_lo[None, :]
            u = free // width[None, :] + ahead
            table = np.where(at_top[None, :], W[np.clip(u, 0, cap), l[None, :]],
                             Wc[np.clip(u, 0, cap), l[None, :]])
            cost = np.where(free < 0, _INF, np.where((u > cap) | (u >= last), l[None, :] - 1, table))
            lower = np.minimum(cost + _rest(F_lo, window, at_top, lvl[sl] + units_lo[ends][None, :]),
                               _INF).min(axis=1)
            if stop < n:  # parts ending beyond the window (eq. C23): the larger of
                # W(l, u) >= W(length, u) + l - length and the superadditive slope
                free = room - used_lo[sl, 0] - state_min[c + 1]
                u = free // max(1, act_min[c + 1]) + 1
                head = np.where(free < 0, _INF, np.where(u >= min(cap, length - 1), length - 1,
                                                         W[np.clip(u, 0, cap), length]))
                bound = np.ceil((slope[:, sl] * (-c - offset) - 1 + linear[:, sl]).max(axis=0))
                lower = np.minimum(lower, np.maximum(head - c - length + suffix[sl], bound.astype(np.int64)))
            new_lo[sl] = lower
        F_lo[row] = new_lo
    result = dict(none)
    if F_lo[0, 0] < _INF:
        result["lower_bound"] = n + int(F_lo[0, 0])
    if F_hi[0, 0] < _INF:
        result["actions"] = _rebuild(choice, slots, units_hi, n, SW, SWc)
        result["evals"] = n + int(F_hi[0, 0])
    return result


def _rest(F, window, at_top, nxt):
    """``F[c', nxt]`` for each candidate ``c'`` (its row ``window``; 0 above
    the top part; _INF when the checkpoints would fill the budget)."""
    levels = F.shape[1]
    got = F[window[None, :], np.minimum(nxt, levels - 1)]
    return np.where(at_top[None, :], 0, np.where(nxt < levels, got, _INF))


def _rebuild(choice, slots, units, n, SW, SWc):
    """The upper run's schedule: the first pass to its checkpoints, the
    loss, then each part reversed by :func:`unit_actions`, the top first."""
    first, parts, c, lvl = [], [], 0, 0
    while True:
        nxt, u = c + int(choice[c, lvl]), int(slots[c, lvl])
        first.append((FORWARD, c, nxt, 0))
        parts.append((c, nxt - c, u))
        if nxt == n:
            break
        lvl += int(units[nxt])
        c = nxt
    out = first + [(LOSS,)]
    for start, l, u in reversed(parts):
        unit_actions(start, l, u, out, SW, SWc)
    return tuple(out)


def unit_actions(start, length, u, out, SW, SWc):
    """Append the unit model's optimal reversal of ``[start, start + length)``
    (its top not counted, ``u`` units) to ``out``, from the splits ``SW`` and
    ``SWc`` of :func:`unit_tables`: an explicit task stack."""
    stack = [(False, start, length, u)]
    while stack:
        counted, s, l, units = stack.pop()
        if l == 1:
            if out and out[-1][0] == BACKWARD and out[-1][1] == s + 1:
                out[-1] = (BACKWARD, s, out[-1][2])
            else:
                out.append((BACKWARD, s, s + 1))
            continue
        j = int((SWc if counted else SW)[units, l])
        out.append((FORWARD, s, s + j, 0))
        stack.append((True, s, j, units))  # runs second: its top a[s + j] counted
        stack.append((counted, s + j, l - j, units - 1))
    return out
