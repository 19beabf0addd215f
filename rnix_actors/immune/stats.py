"""Small-sample predictive statistics: how likely a value is under a template's baseline.

Every detector rule asks one question: *if this run were like the learned ones, how likely
is a value at least this extreme?* (a one-sided tail probability of the posterior
predictive distribution). A value is anomalous when that probability is below
``alpha(deviation_threshold)``, the one-sided normal tail of ``k`` standard deviations
(2.0 → 2.3%, 3.0 → 0.13%), so raising the threshold can only remove alarms.

* **Counts** (calls of one kind per run or per step, steps per run): Poisson with a
  Gamma(``COUNT_SHAPE``, ``COUNT_RATE``) prior on the rate; the predictive is negative
  binomial. Eight runs of exactly one call give P(2 or more) ≈ 29%: a history of 1s does
  not make a 2 a rare event, but 6 is (P ≈ 0.2%).
* **Continuous values** (tokens, durations, on the log scale: they vary by factors): normal
  with unknown mean and variance, and a prior of ``SCALE_PRIOR_N`` pseudo-observations of a
  given spread; the predictive is a Student t. Zero variance is a small sample, not a
  certainty.
* **Novelty** (a call, destination or transition never seen): Beta-Bernoulli. After ``n``
  runs of which ``d`` (not counting the first) brought something new of that kind, the next
  run brings something new with probability ``(d + a) / (n + a + b)``; the prior ``a, b``
  says how common such novelty is before any evidence (see `rnix_actors.immune.novelty`).

Pure functions, no state.
"""

from __future__ import annotations

import functools
import math
import statistics

COUNT_SHAPE = 0.5
"""Gamma prior shape of a count's rate (half a pseudo-event)."""
COUNT_RATE = 0.0
"""Gamma prior rate of a count's rate: none (with the shape ½, Jeffreys' prior), so that
the predictive mean of a count is never pulled below what was observed."""
SCALE_PRIOR_N = 2.0
"""Pseudo-observations behind the prior spread of a continuous metric."""
MAX_COUNT = 1 << 20


def alpha(k: float) -> float:
    """The one-sided normal tail beyond ``k`` standard deviations: P(Z > k)."""
    return 0.5 * math.erfc(k / math.sqrt(2.0))


def _nb_params(total: float, n: float) -> tuple[float, float]:
    """Negative binomial (r, p) of the next count after ``n`` observations summing to
    ``total`` (Gamma-Poisson): P(X = x) = C(x + r - 1, x) p^r (1 - p)^x."""
    r = COUNT_SHAPE + total
    p = (COUNT_RATE + n) / (COUNT_RATE + n + 1.0)
    return r, p


def count_tail(value: float, total: float, n: float) -> float:
    """P(X >= value) for the next count, after ``n`` observations summing to ``total``."""
    x = math.ceil(value)
    if x <= 0:
        return 1.0
    r, p = _nb_params(total, n)
    pmf = p**r
    below = 0.0
    for i in range(x):
        below += pmf
        pmf *= (r + i) / (i + 1) * (1.0 - p)
    return max(0.0, 1.0 - below)


@functools.lru_cache(maxsize=65536)
def count_limit(total: float, n: float, a: float) -> int:
    """The largest count that is *not* anomalous at tail level ``a``: every count above it
    has P(X >= count) < a. Cached: profiles are compiled again after every learned run.
    Beyond a mean of `LARGE_MEAN` the negative binomial is summed from a normal start
    point rather than from zero (its tail is then near-normal; the sum stays exact)."""
    r, p = _nb_params(total, n)
    mean = r * (1.0 - p) / p
    if mean > LARGE_MEAN:
        return _count_limit_from(r, p, a, mean)
    pmf = p**r
    tail = 1.0  # P(X >= x) for the current x
    x = 0
    while x < MAX_COUNT:
        tail -= pmf
        if tail < a:
            return x
        pmf *= (r + x) / (x + 1) * (1.0 - p)
        x += 1
    return MAX_COUNT


LARGE_MEAN = 50.0


def _count_limit_from(r: float, p: float, a: float, mean: float) -> int:
    """`count_limit` for a large mean: walk the upper tail from a few deviations above the
    mean, with the pmf computed in logs."""
    sd = math.sqrt(mean / p)
    x = max(0, int(mean + 2.0 * sd))
    log_pmf = (
        math.lgamma(x + r) - math.lgamma(r) - math.lgamma(x + 1)
        + r * math.log(p) + x * math.log1p(-p)
    )  # fmt: skip
    # The tail from x on, summed forwards until the terms vanish.
    terms = []
    pmf = math.exp(log_pmf)
    k = x
    while pmf > 1e-18 * max(a, 1e-300) or k < x + 10:
        terms.append(pmf)
        pmf *= (r + k) / (k + 1) * (1.0 - p)
        k += 1
        if k - x > MAX_COUNT:
            break
    tail = math.fsum(terms)
    if tail >= a:  # the limit lies above x: drop terms from the front
        for i, term in enumerate(terms):
            tail -= term
            if tail < a:
                return x + i
        return k
    # The limit lies below x: walk down, adding terms back.
    pmf = math.exp(log_pmf)
    while x > 0:
        pmf *= x / ((r + x - 1) * (1.0 - p))
        x -= 1
        tail += pmf
        if tail >= a:
            return x
    return 0


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta (Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_tail(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    if t <= 0:
        return 1.0 - t_tail(-t, df) if t < 0 else 0.5
    return 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))


@functools.lru_cache(maxsize=4096)
def t_quantile(a: float, df: float) -> float:
    """The t with P(T > t) = ``a``: the Cornish-Fisher expansion from the normal quantile
    where it is within 0.2% (10 or more degrees of freedom and a >= 1e-5, or 5 or more and
    a >= 1e-3), bisection elsewhere."""
    if (df >= 10 and a >= 1e-5) or (df >= 5 and a >= 1e-3):
        z = statistics.NormalDist().inv_cdf(1.0 - a)
        z2 = z * z
        g1 = (z2 + 1) * z / 4
        g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
        g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
        g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
        return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
    low, high = 0.0, 1.0
    while t_tail(high, df) > a and high < 1e6:
        high *= 2.0
    for _ in range(100):
        mid = (low + high) / 2.0
        if t_tail(mid, df) > a:
            low = mid
        else:
            high = mid
    return high


def predictive_scale(
    n: int, mean: float, std: float, rel_scale: float, prior_abs: float = 0.0
) -> tuple[float, float]:
    """(scale, degrees of freedom) of the Student-t predictive of the next value, after ``n``
    values with this mean and sample standard deviation, the prior spread being
    ``rel_scale × |mean| + prior_abs`` worth ``SCALE_PRIOR_N`` observations."""
    prior = rel_scale * abs(mean) + prior_abs
    df = SCALE_PRIOR_N + max(0, n - 1)
    var = (SCALE_PRIOR_N * prior * prior + max(0, n - 1) * std * std) / df
    return math.sqrt(var * (1.0 + 1.0 / max(n, 1))), df


def continuous_limit(
    n: int, mean: float, std: float, rel_scale: float, a: float, prior_abs: float = 0.0
) -> float:
    """The largest value that is not anomalous at tail level ``a``."""
    scale, df = predictive_scale(n, mean, std, rel_scale, prior_abs)
    return mean + t_quantile(a, df) * scale


def continuous_tail(
    value: float, n: int, mean: float, std: float, rel_scale: float, prior_abs: float = 0.0
) -> float:
    """P(next value >= ``value``)."""
    scale, df = predictive_scale(n, mean, std, rel_scale, prior_abs)
    if scale <= 0:
        return 0.0 if value > mean else 1.0
    return t_tail((value - mean) / scale, df)


def novelty_p(fresh_runs: int, runs: int, a: float, b: float) -> float:
    """Predictive probability that the next run brings something new of a kind that
    ``fresh_runs`` of ``runs`` learned runs brought (the first run, which brings everything,
    is not counted in either)."""
    later = max(0, runs - 1)
    return (min(fresh_runs, later) + a) / (later + a + b)
