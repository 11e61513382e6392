"""Comparing two classifiers on the same images: McNemar's exact test and the paired standard error."""
from __future__ import annotations

import math

import torch


def paired_comparison(y_true, pred_a, pred_b) -> dict:
    """McNemar's exact test of A against B on the same samples, and the standard error of their accuracy difference.

    Only the discordant samples carry information: b (A right, B wrong) and c (A wrong, B right).
    Under "equally accurate", b is Binomial(b + c, 1/2); the two-sided p-value doubles the smaller tail.
    """
    y, a, b_ = (torch.as_tensor(v).flatten() for v in (y_true, pred_a, pred_b))
    if not (len(y) == len(a) == len(b_)) or len(y) == 0:
        raise ValueError(f"expected three non-empty vectors of one length, got lengths {len(y)}, {len(a)}, {len(b_)}")
    right_a, right_b = a == y, b_ == y
    n = len(y)
    b = int((right_a & ~right_b).sum())
    c = int((~right_a & right_b).sum())
    m = b + c
    p = 1.0 if m == 0 else min(1.0, 2 * sum(math.comb(m, k) for k in range(min(b, c) + 1)) / 2 ** m)
    diff = (b - c) / n  # accuracy of A minus accuracy of B
    se = math.sqrt(max(m / n - diff ** 2, 0.0) / n)  # of the paired difference (variance of the per-sample difference / n)
    return {"n": n, "acc_a": float(right_a.float().mean()), "acc_b": float(right_b.float().mean()),
            "a_only_right": b, "b_only_right": c, "diff": diff, "se_diff": se, "p_value": p}


def paired_text(result: dict | str, name_a: str, name_b: str) -> str:
    """paired_comparison's result as two lines of text (a string result, a reason for no test, is returned as is)."""
    if isinstance(result, str):
        return result
    r = result
    return (f"{name_a}: {100 * r['acc_a']:.2f}%, {name_b}: {100 * r['acc_b']:.2f}% on the same {r['n']} images; "
            f"right only by {name_a}: {r['a_only_right']}, only by {name_b}: {r['b_only_right']}\n"
            f"difference {100 * r['diff']:+.2f} points, paired standard error {100 * r['se_diff']:.2f} points, "
            f"McNemar exact two-sided p {'= ' + format(r['p_value'], '.2g') if r['p_value'] > 0 else '< 1e-300'}")
