"""Firing thresholds from calibration data (paper 004, DCGS, section 4.2; issue 8).

Three pieces:

* :class:`ActivationStats` - streaming per-channel statistics (count, mean, variance, max, exact
  percentiles over the kept values) of a ReLU's pre-activation over a calibration set;
* the threshold methods ``max``, ``percentile:<q>`` and ``iterate`` (the paper's Algorithm 1, the
  "threshold iteration method"), each with a scale factor ``c`` (the paper's ``model-n/c``);
* the paper's error model: :func:`QE` (Eq. 23) and :func:`k1` (Eq. 27) in closed form, vectorised
  over channels.

Notation (see docs/calibration.md). ``N`` is the number of quantisation levels of Eq. 24,
``f(x, theta) = theta/N * clamp(floor((N x + theta/2) / theta), 0, N)``: ``N = T`` for an IF neuron
run for ``T`` time-steps, ``N = 2**n * T`` (the paper's "roughly") for a multi-threshold neuron with
``n`` positive thresholds (:func:`quantization_levels`). The sums of Eq. 27 run over these ``N``
levels; the paper's appendix reuses the letter ``n`` for them.

With ``q(x) = f(x, theta)`` and ``x ~ Normal(mu, sigma^2)``, the rounding points are
``b_j = (2j - 1) theta / (2N)``, ``j = 1..N``, and ``q(x) = theta/N * #{j : x >= b_j}``. Hence

    E[q^2]       = (theta/N)^2 * sum_j (2j - 1) P(x >= b_j)
    E[q relu(x)] = (theta/N)   * sum_j E[x ; x >= b_j]       (all b_j > 0)
    k1 = argmin_k QE1(theta, k) = E[q relu(x)] / E[q^2]

which, written with erf, is exactly the printed Eq. 27 (with its ``n`` read as ``N``). The fixed
points ``k1 = 1`` are the stationary points of QE: ``dQE/dtheta = (2/theta) (E[q^2] - E[q relu])``
(the error is continuous at the rounding points, which are the midpoints between levels). They are
unique only when sigma is not small against theta/N: Theorem 4.10's proof (Eq. 82) drops a
product-rule term, and narrow Gaussians have a local minimum near every theta = N mu / j.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
from scipy.special import erfc, erfcx

from .errors import SnncError

__all__ = [
    "CalibrationError",
    "ActivationStats",
    "ThresholdMethod",
    "ThresholdSpec",
    "Thresholds",
    "parse_threshold_method",
    "quantization_levels",
    "QE",
    "QE1",
    "k1",
    "iterate_threshold",
    "compute_thresholds",
    "collect_relu_stats",
]

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)
_SQRT_PI_2 = math.sqrt(math.pi / 2.0)


class CalibrationError(SnncError):
    """Bad threshold-method spelling, bad calibration data, or a threshold iteration that did not converge."""


# --------------------------------------------------------------------------------------------------
# Statistics


class ActivationStats:
    """Per-channel statistics of a tensor stream of shape (B, C, ...); channels are axis 1.

    Mean and variance are accumulated in float64 with Chan et al.'s parallel (batched Welford)
    update, so they do not depend on how the data is split into batches beyond rounding. The variance
    is the population variance (ddof = 0), as numpy's ``var`` default.

    Percentiles are exact over the kept values (``np.percentile``, linear interpolation). Memory: the
    kept values take ``8 * C * min(count, max_values)`` bytes (float64). With ``max_values=None``
    every value is kept and percentiles are exact over the data. With a cap, each channel keeps a
    uniform reservoir sample (Algorithm R) drawn with ``numpy.random.default_rng(seed)``: the sample
    is a deterministic function of (data, batch split, seed). All channels see the same number of
    values, so the same reservoir positions are used for every channel, and the union of the channel
    reservoirs is a uniform sample of the whole tensor (used by the per-tensor percentile).
    ``keep_values=False`` keeps no values (no percentiles; mean/var/max only).
    """

    def __init__(self, *, keep_values: bool = True, max_values: int | None = None, seed: int = 0):
        if max_values is not None and int(max_values) < 1:
            raise CalibrationError(f"max_values must be a positive integer or None, got {max_values!r}")
        self.keep_values = bool(keep_values)
        self.max_values = None if max_values is None else int(max_values)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self.channels: int | None = None
        self.count = 0  # values seen per channel
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None
        self._max: np.ndarray | None = None
        self._min: np.ndarray | None = None
        self._chunks: list[np.ndarray] = []  # uncapped: (C, m) chunks
        self._res: np.ndarray | None = None  # capped: (C, max_values) reservoir
        self._res_fill = 0

    @classmethod
    def from_array(cls, x: np.ndarray, **kwargs) -> "ActivationStats":
        s = cls(**kwargs)
        s.update(x)
        return s

    # -- accumulation ------------------------------------------------------------------------------
    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x)
        if x.ndim < 2:
            raise CalibrationError(f"activation tensors must be (batch, channels, ...); got shape {x.shape}")
        C = x.shape[1]
        if self.channels is None:
            self.channels = C
        elif C != self.channels:
            raise CalibrationError(f"channel count changed from {self.channels} to {C} between batches")
        v = np.moveaxis(x, 1, 0).reshape(C, -1).astype(np.float64, copy=False)
        m = v.shape[1]
        if m == 0:
            return
        if not np.all(np.isfinite(v)):
            raise CalibrationError("calibration activations contain NaN or Inf")
        bmean = v.mean(axis=1)
        bm2 = ((v - bmean[:, None]) ** 2).sum(axis=1)
        if self.count == 0:
            self._mean, self._m2 = bmean, bm2
            self._max, self._min = v.max(axis=1), v.min(axis=1)
        else:
            n = self.count
            tot = n + m
            delta = bmean - self._mean
            self._mean = self._mean + delta * (m / tot)
            self._m2 = self._m2 + bm2 + delta ** 2 * (n * m / tot)
            self._max = np.maximum(self._max, v.max(axis=1))
            self._min = np.minimum(self._min, v.min(axis=1))
        if self.keep_values:
            self._keep(v)
        self.count += m

    def _keep(self, v: np.ndarray) -> None:
        if self.max_values is None:
            self._chunks.append(v.copy())
            return
        cap = self.max_values
        C, m = v.shape
        if self._res is None:
            self._res = np.empty((C, cap), np.float64)
        start = 0
        if self._res_fill < cap:  # fill phase
            k = min(cap - self._res_fill, m)
            self._res[:, self._res_fill:self._res_fill + k] = v[:, :k]
            self._res_fill += k
            start = k
        if start < m:  # replacement phase: value with global index i replaces slot j ~ U{0..i} if j < cap
            gidx = self.count + np.arange(start, m, dtype=np.int64)
            j = self._rng.integers(0, gidx + 1)
            hit = np.nonzero(j < cap)[0]
            if hit.size:
                slots, src = j[hit], hit + start
                # sequential semantics: when a slot is hit several times the last value wins
                rs = slots[::-1]
                _, first = np.unique(rs, return_index=True)
                keep = len(rs) - 1 - first
                self._res[:, slots[keep]] = v[:, src[keep]]

    # -- per-channel results -----------------------------------------------------------------------
    def _need(self) -> None:
        if self.count == 0:
            raise CalibrationError("no calibration values were seen")

    @property
    def mean(self) -> np.ndarray:
        self._need()
        return self._mean.copy()

    @property
    def var(self) -> np.ndarray:
        self._need()
        return self._m2 / self.count

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    @property
    def max(self) -> np.ndarray:
        self._need()
        return self._max.copy()

    @property
    def min(self) -> np.ndarray:
        self._need()
        return self._min.copy()

    @property
    def exact_percentiles(self) -> bool:
        """True when every value seen is kept (percentiles exact over the data)."""
        return self.keep_values and (self.max_values is None or self.count <= self.max_values)

    def values(self) -> np.ndarray:
        """The kept values, shape (C, kept)."""
        self._need()
        if not self.keep_values:
            raise CalibrationError("percentiles need the values: collect the statistics with keep_values=True")
        if self.max_values is None:
            if len(self._chunks) > 1:
                self._chunks = [np.concatenate(self._chunks, axis=1)]
            return self._chunks[0]
        return self._res[:, :self._res_fill]

    def percentile(self, q: float) -> np.ndarray:
        """Per-channel ``q``-th percentile (0 <= q <= 100) of the kept values."""
        return np.percentile(self.values(), q, axis=1)

    # -- per-tensor results ------------------------------------------------------------------------
    @property
    def tensor_mean(self) -> float:
        return float(self.mean.mean())

    @property
    def tensor_var(self) -> float:
        """Variance over all values of the tensor (channels have equal counts)."""
        mu = self.mean
        return float(self.var.mean() + ((mu - mu.mean()) ** 2).mean())

    @property
    def tensor_std(self) -> float:
        return math.sqrt(self.tensor_var)

    @property
    def tensor_max(self) -> float:
        return float(self.max.max())

    def tensor_percentile(self, q: float) -> float:
        return float(np.percentile(self.values(), q))

    def __repr__(self) -> str:
        return (f"ActivationStats(channels={self.channels}, count={self.count}, keep_values={self.keep_values}, "
                f"max_values={self.max_values})")


# --------------------------------------------------------------------------------------------------
# Error model (Eq. 23-27)


def quantization_levels(T: int, n_thresholds: int | None = None) -> int:
    """``N`` of Eq. 24: ``T`` for an IF neuron, ``2**n * T`` for a multi-threshold neuron with ``n``
    positive thresholds (the paper's "roughly let N = 2^n T")."""
    if int(T) < 1:
        raise CalibrationError(f"T must be >= 1, got {T}")
    if n_thresholds is None:
        return int(T)
    if int(n_thresholds) < 1:
        raise CalibrationError(f"n_thresholds must be >= 1, got {n_thresholds}")
    return (2 ** int(n_thresholds)) * int(T)


def _check_N(N) -> int:
    if isinstance(N, (bool, np.bool_)) or int(N) != N or int(N) < 1:
        raise CalibrationError(f"N (quantisation levels) must be a positive integer, got {N!r}")
    return int(N)


def _one_minus_zR(z: np.ndarray) -> np.ndarray:
    """``1 - z R(z)`` for z >= 0, R the Mills ratio Q(z)/phi(z); series for large z (no cancellation)."""
    out = np.empty_like(z)
    small = z < 40.0
    zs = z[small]
    out[small] = 1.0 - zs * _SQRT_PI_2 * erfcx(zs / _SQRT2)
    zl = z[~small]
    w = 1.0 / (zl * zl)
    out[~small] = w * (1.0 - w * (3.0 - w * (15.0 - w * (105.0 - w * 945.0))))
    return out


def _tail_sums(theta, mu, sigma, N):
    """Scaled sums over the rounding points b_j = (2j-1) theta/(2N), for sigma > 0:

    returns (Sq, Sx) with ``Sq = sum_j (2j-1) P(x >= b_j) / s`` and ``Sx = sum_j E[x ; x >= b_j] / s``
    for a common per-channel scale ``s = phi(max(z_1, 0))`` that keeps them from underflowing.
    """
    j = np.arange(1, N + 1, dtype=np.float64)
    b = theta[..., None] * ((2.0 * j - 1.0) / (2.0 * N))
    z = (b - mu[..., None]) / sigma[..., None]
    z1 = z[..., :1]
    z0 = np.maximum(z1, 0.0)
    # z_j - z0, computed without cancellation when z_1 > 0 (z_j - z_1 = (j-1) theta / (N sigma))
    dz = np.where(z1 > 0, (theta / (N * sigma))[..., None] * (j - 1.0), z)
    pos = z >= 0.0
    Q = np.empty_like(z)  # P(x >= b_j) / s
    L = np.empty_like(z)  # E[(x - b_j)^+] / (sigma s)   (the unit loss function, scaled)
    zp = z[pos]
    ratio = np.exp(-0.5 * dz[pos] * (zp + np.broadcast_to(z0, z.shape)[pos]))
    Q[pos] = ratio * _SQRT_PI_2 * erfcx(zp / _SQRT2)
    L[pos] = ratio * _one_minus_zR(zp)
    zn = z[~pos]  # here z0 = 0, s = phi(0)
    Qn = 0.5 * erfc(zn / _SQRT2)
    Q[~pos] = Qn * _SQRT2PI
    L[~pos] = (np.exp(-0.5 * zn * zn) / _SQRT2PI - zn * Qn) * _SQRT2PI
    Sq = ((2.0 * j - 1.0) * Q).sum(axis=-1)
    Sx = (b * Q + sigma[..., None] * L).sum(axis=-1)  # E[x; x>=b] = b P(x>=b) + sigma E[(z'-z)^+]
    return Sq, Sx


def _broadcast(theta, mu, sigma):
    theta, mu, sigma = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (theta, mu, sigma)))
    if np.any(sigma < 0) or np.any(~np.isfinite(sigma)) or np.any(~np.isfinite(mu)):
        raise CalibrationError("mu must be finite and sigma finite and >= 0")
    if np.any(~(theta > 0)) or np.any(~np.isfinite(theta)):
        raise CalibrationError("thresholds must be finite and > 0")
    return theta, mu, sigma


def k1(theta, mu, sigma, N: int) -> np.ndarray:
    """Eq. 27: ``argmin_k QE1(theta, k) = E[q(x) relu(x)] / E[q(x)^2]``, x ~ Normal(mu, sigma^2).

    Vectorised (numpy broadcasting over theta, mu, sigma). Computed in the equivalent, underflow-free
    form ``N * sum_j E[x; x >= b_j] / (theta * sum_j (2j-1) P(x >= b_j))``. For sigma == 0 the point
    mass gives ``mu / q(mu)``; where q(x) = 0 almost surely (sigma == 0 and q(mu) == 0) the result is
    NaN (k is undetermined: QE1 does not depend on k).
    """
    N = _check_N(N)
    theta, mu, sigma = _broadcast(theta, mu, sigma)
    out = np.full(theta.shape, np.nan)
    g = sigma > 0
    if np.any(g):
        Sq, Sx = _tail_sums(theta[g], mu[g], sigma[g], N)
        out[g] = N * Sx / (theta[g] * Sq)
    d = ~g
    if np.any(d):
        q = _quantize(mu[d], theta[d], N)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[d] = np.where(q > 0, mu[d] / np.where(q > 0, q, 1.0), np.nan)
    return out


def _quantize(x, theta, N):
    """Eq. 24, f(x, theta)."""
    return theta / N * np.clip(np.floor((N * x + theta / 2.0) / theta), 0, N)


def _relu2(mu, sigma):
    """E[relu(x)^2], x ~ Normal(mu, sigma^2), sigma > 0."""
    a = mu / sigma
    P = 0.5 * erfc(-a / _SQRT2)
    return (mu * mu + sigma * sigma) * P + mu * sigma * np.exp(-0.5 * a * a) / _SQRT2PI


def _expectations(theta, mu, sigma, N):
    """Unscaled (E[q^2], E[q x]) for sigma > 0."""
    Sq, Sx = _tail_sums(theta, mu, sigma, N)
    z1 = np.maximum((theta / (2.0 * N) - mu) / sigma, 0.0)
    s = np.exp(-0.5 * z1 * z1) / _SQRT2PI
    return (theta / N) ** 2 * Sq * s, (theta / N) * Sx * s


def QE1(theta, k, mu, sigma, N: int, *, normalized: bool = False) -> np.ndarray:
    """Eq. 25: the error of ``k * f(x, theta)``: ``k^2 E[q^2] - 2k E[q relu] + E[relu^2]``.

    ``normalized=False`` is the paper's integral with the unnormalised weight
    ``exp(-(x-mu)^2/(2 sigma^2))``, i.e. ``sqrt(2 pi) sigma`` times the expectation.
    """
    N = _check_N(N)
    theta, mu, sigma = _broadcast(theta, mu, sigma)
    k = np.broadcast_to(np.asarray(k, dtype=np.float64), theta.shape)
    out = np.zeros(theta.shape)
    g = sigma > 0
    if np.any(g):
        q2, qx = _expectations(theta[g], mu[g], sigma[g], N)
        e = k[g] ** 2 * q2 - 2.0 * k[g] * qx + _relu2(mu[g], sigma[g])
        out[g] = np.maximum(e, 0.0) * (1.0 if normalized else _SQRT2PI * sigma[g])
    d = ~g
    if np.any(d):  # point mass at mu: the paper's integral is 0; the expectation is the squared error at mu
        e = (k[d] * _quantize(mu[d], theta[d], N) - np.maximum(mu[d], 0.0)) ** 2
        out[d] = e if normalized else 0.0
    return out


def QE(theta, mu, sigma, N: int, *, normalized: bool = False) -> np.ndarray:
    """Eq. 23, in closed form: ``QE(theta) = QE1(theta, 1)``.

    ``E[(f(x,theta) - relu(x))^2] = E[q^2] - 2 E[q x] + E[relu(x)^2]`` with the sums above and
    ``E[relu^2] = (mu^2 + sigma^2) Phi(mu/sigma) + mu sigma phi(mu/sigma)``. The absolute rounding
    error is about 1e-16 * (mu^2 + sigma^2). ``normalized=False`` multiplies by ``sqrt(2 pi) sigma``
    (the paper's unnormalised Gaussian weight); the minimiser over theta is the same.
    """
    return QE1(theta, 1.0, mu, sigma, N, normalized=normalized)


# --------------------------------------------------------------------------------------------------
# Algorithm 1


def iterate_threshold(mu, sigma, N: int, *, theta0=1.0, eps: float = 1e-12, max_iter: int = 1000,
                      accelerate: bool = True, return_iterations: bool = False):
    """Algorithm 1 (threshold iteration), per channel: ``theta <- k1(theta) * theta`` until
    ``|k1(theta) - 1| < eps``.

    ``mu``, ``sigma`` (the standard deviation) and ``theta0`` (the starting threshold, any positive
    value; Algorithm 1 uses 1) broadcast together; the result has their broadcast shape.

    ``accelerate=False`` is the paper's iteration verbatim, ``max_iter`` steps at most. Its
    contraction factor ``h'(theta*)`` (``h(theta) = k1(theta) theta``) tends to 1 as N grows
    (measured: 0.65 at N = 2, 0.92 at N = 8, 0.996 at N = 64, 0.9996 at N = 256), so it needs about
    ``ln(1/eps) / (1 - h')`` steps. ``accelerate=True`` (default) reaches the same fixed point with
    the same stopping test in a few dozen k1 evaluations: each round takes two Algorithm-1 steps and
    Aitken's delta-squared extrapolation of them, the extrapolation kept only when it moves further in
    the direction of the steps without crossing a root of ``k1 - 1``; once two evaluated points
    straddle a root (an overshoot), the root is found by the Illinois method on ``log theta`` inside
    that bracket. Both stop when ``|k1 - 1| < eps``; the relative distance to the fixed point is then
    about ``eps / (1 - h')``.

    Where QE has several local minima (sigma small compared with the level spacing theta/N - Theorem
    4.10's uniqueness does not hold there, see docs/calibration.md) both variants return a local
    minimiser of QE, which one depending on ``theta0``.

    Degenerate channels:

    * ``sigma == 0 and mu > 0`` (a point mass): every theta putting mu on a level has zero error; the
      result is ``theta = mu`` (the max), without iterating;
    * ``sigma == 0 and mu <= 0``: the channel is never positive, QE does not depend on theta and no
      threshold is defined: the result is NaN (``compute_thresholds`` substitutes its fallback);
    * ``sigma > 0``: a fixed point always exists, however negative mu (k1 > 1 for small theta, k1 ->
      1/2 for large theta); for mu << 0 it is small (of order sigma^2 / |mu|) and k1 is computed
      without underflow.

    Raises :class:`CalibrationError` naming the channels that did not reach ``|k1 - 1| < eps`` within
    ``max_iter`` rounds. ``return_iterations=True`` returns ``(theta, evaluations)``, the number of
    k1 evaluations per channel.
    """
    N = _check_N(N)
    if not eps > 0:
        raise CalibrationError(f"eps must be > 0, got {eps}")
    if int(max_iter) < 1:
        raise CalibrationError(f"max_iter must be >= 1, got {max_iter}")
    mu, sigma, theta = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (mu, sigma, theta0)))
    shape = mu.shape
    mu, sigma, theta = mu.ravel().copy(), sigma.ravel().copy(), theta.ravel().copy()
    if np.any(~(theta > 0)) or np.any(~np.isfinite(theta)):
        raise CalibrationError(f"theta0 must be finite and > 0, got {theta0!r}")
    if np.any(~np.isfinite(mu)) or np.any(~np.isfinite(sigma)) or np.any(sigma < 0):
        raise CalibrationError("mu must be finite and sigma finite and >= 0")
    evals = np.zeros(theta.shape, np.int64)
    point = sigma == 0
    theta[point] = np.where(mu[point] > 0, mu[point], np.nan)

    def R(t, idx):  # residual k1(t) - 1
        k = k1(t, mu[idx], sigma[idx], N)
        evals[idx] += 1
        bad = ~(np.isfinite(k) & (k > 0))
        if np.any(bad):
            raise CalibrationError(
                f"threshold iteration produced k1 = {k[bad][:3]} for channel(s) {idx[bad][:10].tolist()} "
                f"(mu={mu[idx][bad][:3]}, sigma={sigma[idx][bad][:3]}, theta={t[bad][:3]})")
        return k - 1.0

    n = theta.size
    r = np.full(n, np.nan)
    # Illinois bracket in u = log(theta): (ua, ra) the kept end, (ub, rb) the latest point
    br = np.zeros(n, bool)
    ua, ra, ub, rb = (np.full(n, np.nan) for _ in range(4))
    a = np.nonzero(~point)[0]
    if a.size:
        r[a] = R(theta[a], a)
    for _ in range(int(max_iter)):
        a = a[np.abs(r[a]) >= eps]
        if a.size == 0:
            break
        if not accelerate:
            theta[a] *= 1.0 + r[a]
            r[a] = R(theta[a], a)
            continue
        # -- channels with a bracket: one Illinois step
        ib = a[br[a]]
        if ib.size:
            with np.errstate(divide="ignore", invalid="ignore"):
                uc = ub[ib] - rb[ib] * (ub[ib] - ua[ib]) / (rb[ib] - ra[ib])
            lo, hi = np.minimum(ua[ib], ub[ib]), np.maximum(ua[ib], ub[ib])
            uc = np.where(np.isfinite(uc) & (uc > lo) & (uc < hi), uc, 0.5 * (lo + hi))
            rc = R(np.exp(uc), ib)
            flip = np.sign(rc) != np.sign(rb[ib])
            ra[ib] = np.where(flip, rb[ib], 0.5 * ra[ib])
            ua[ib] = np.where(flip, ub[ib], ua[ib])
            ub[ib], rb[ib] = uc, rc
            theta[ib], r[ib] = np.exp(uc), rc
        # -- channels without: two Algorithm-1 steps + guarded Aitken extrapolation
        ia = a[~br[a]]
        if ia.size:
            t0, r0 = theta[ia], r[ia]
            t1 = t0 * (1.0 + r0)
            r1 = R(t1, ia)
            cross1 = np.sign(r1) != np.sign(r0)
            go = ~cross1 & (np.abs(r1) >= eps)
            t2, r2 = t1.copy(), r1.copy()
            if np.any(go):
                t2[go] = t1[go] * (1.0 + r1[go])
                r2[go] = R(t2[go], ia[go])
            cross2 = go & (np.sign(r2) != np.sign(r1))
            new_t, new_r = np.where(cross1, t1, t2), np.where(cross1, r1, r2)
            # Aitken, only where the two steps went the same way and stayed on one side of the root
            ok = go & ~cross2 & (np.abs(r2) >= eps)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                den = t2 - 2.0 * t1 + t0
                tA = t2 - (t2 - t1) ** 2 / den
            ok &= np.isfinite(tA) & (tA > 0) & ((tA - t2) * (t2 - t1) > 0)
            crossA = np.zeros(ia.size, bool)
            rA = np.full(ia.size, np.nan)
            if np.any(ok):
                rA[ok] = R(tA[ok], ia[ok])
                same = ok & (np.sign(rA) == np.sign(r2))
                crossA = ok & ~same
                take = same | (crossA & (np.abs(rA) < eps))
                new_t[take], new_r[take] = tA[take], rA[take]
                crossA &= ~take
            # open brackets where a root was straddled
            for m, (pa, qa, pb, qb) in ((cross1, (t0, r0, t1, r1)), (cross2, (t1, r1, t2, r2)),
                                         (crossA, (t2, r2, tA, rA))):
                if np.any(m):
                    idx = ia[m]
                    br[idx] = True
                    ua[idx], ra[idx], ub[idx], rb[idx] = np.log(pa[m]), qa[m], np.log(pb[m]), qb[m]
                    new_t[m], new_r[m] = pb[m], qb[m]
            theta[ia], r[ia] = new_t, new_r
    else:
        a = a[np.abs(r[a]) >= eps]
        if a.size:
            raise CalibrationError(
                f"threshold iteration did not converge in {max_iter} rounds (|k1 - 1| < {eps}) for "
                f"{a.size} channel(s), e.g. {a[:10].tolist()}: mu={mu[a][:3]}, sigma={sigma[a][:3]}, "
                f"last k1={1.0 + r[a][:3]}; raise max_iter or eps")
    theta = theta.reshape(shape)
    return (theta, evals.reshape(shape)) if return_iterations else theta


# --------------------------------------------------------------------------------------------------
# Methods


class ThresholdMethod(str, Enum):
    MAX = "max"
    PERCENTILE = "percentile"
    ITERATE = "iterate"


SUPPORTED_SPELLINGS = ("max", "percentile:<q> (0 < q <= 100, e.g. percentile:99.9)", "iterate")


@dataclass(frozen=True)
class ThresholdSpec:
    """A parsed method: ``method``, ``q`` (percentile only) and the scale ``c`` (thresholds x c)."""

    method: ThresholdMethod
    q: float | None = None
    scale: float = 1.0

    def __str__(self) -> str:
        s = f"percentile:{self.q:g}" if self.method is ThresholdMethod.PERCENTILE else self.method.value
        return s if self.scale == 1.0 else f"{s} x{self.scale:g}"


def parse_threshold_method(text: str, *, scale: float = 1.0) -> ThresholdSpec:
    """Parse the CLI spellings ``max``, ``percentile:<q>``, ``iterate`` (case-insensitive)."""
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise CalibrationError(f"threshold scale c must be a finite number > 0, got {scale!r}")
    s = str(text).strip().lower()
    bad = CalibrationError(f"unknown threshold method {text!r}; supported: {', '.join(SUPPORTED_SPELLINGS)}")
    if s == "max":
        return ThresholdSpec(ThresholdMethod.MAX, None, float(scale))
    if s == "iterate":
        return ThresholdSpec(ThresholdMethod.ITERATE, None, float(scale))
    if s.startswith("percentile"):
        _, sep, arg = s.partition(":")
        if not sep or not arg.strip():
            raise CalibrationError(f"threshold method {text!r} needs a percentile, e.g. 'percentile:99.9'; "
                                   f"supported: {', '.join(SUPPORTED_SPELLINGS)}")
        try:
            q = float(arg)
        except ValueError:
            raise CalibrationError(f"threshold method {text!r}: {arg!r} is not a number; "
                                   f"supported: {', '.join(SUPPORTED_SPELLINGS)}") from None
        if not (0.0 < q <= 100.0):
            raise CalibrationError(f"threshold method {text!r}: the percentile must be in (0, 100], got {q:g}")
        return ThresholdSpec(ThresholdMethod.PERCENTILE, q, float(scale))
    raise bad


@dataclass
class Thresholds:
    """Result of :func:`compute_thresholds`.

    ``theta``: shape (C,) per channel, or shape () per tensor, scale c applied; ``raw``: the same
    before the fallback and the scale (NaN or <= 0 where undefined); ``fallback``: mask of the entries
    that were replaced (see :func:`compute_thresholds`); ``iterations``: Algorithm 1 step counts
    (``iterate`` only).
    """

    spec: ThresholdSpec
    theta: np.ndarray
    raw: np.ndarray
    fallback: np.ndarray
    iterations: np.ndarray | None = None


def _raw(stats: ActivationStats, spec: ThresholdSpec, N, per_channel, theta0, eps, max_iter):
    it = None
    if spec.method is ThresholdMethod.MAX:
        v = stats.max if per_channel else np.asarray(stats.tensor_max)
    elif spec.method is ThresholdMethod.PERCENTILE:
        v = stats.percentile(spec.q) if per_channel else np.asarray(stats.tensor_percentile(spec.q))
    else:
        if N is None:
            raise CalibrationError("the 'iterate' method needs N, the quantisation levels (T, or 2^n T)")
        mu = stats.mean if per_channel else np.asarray(stats.tensor_mean)
        sd = stats.std if per_channel else np.asarray(stats.tensor_std)
        if theta0 is None:
            mx = stats.max if per_channel else np.asarray(stats.tensor_max)
            theta0 = np.where(mx > 0, mx, 1.0)
        v, it = iterate_threshold(mu, sd, N, theta0=theta0, eps=eps, max_iter=max_iter, return_iterations=True)
    return np.asarray(v, dtype=np.float64), it


def compute_thresholds(stats: ActivationStats, spec: ThresholdSpec | str, *, N: int | None = None,
                       per_channel: bool = True, scale: float | None = None, theta0: float | None = None,
                       eps: float = 1e-12, max_iter: int = 1000) -> Thresholds:
    """Thresholds for one ReLU from its pre-activation statistics.

    ``max``: the observed max; ``percentile:q``: the q-th percentile of the kept values;
    ``iterate``: Algorithm 1 from mean and standard deviation with ``N`` levels, started from
    ``theta0`` (default: the observed max where it is > 0, else 1; where QE is unimodal - the usual
    case - the start does not matter). Then multiplied by the scale c (``scale`` overrides
    ``spec.scale``).

    Fallback. A channel never positive in the data (max <= 0) gets no threshold of its own: its
    neuron never fires on the calibration set, so the threshold would only set a scale (``max`` and
    ``percentile`` would give a value <= 0, and ``iterate``'s Gaussian fit a tiny one, of order
    N sigma^2 / |mu|, that the data never reach and that would inflate the integer weights feeding
    it). Such channels, and any other whose raw threshold is not a finite positive number (e.g. a
    percentile <= 0), get: the channel's max if that is > 0, else the per-tensor threshold by the
    same method if that is finite and > 0, else the tensor's max if > 0, else 1.0. They are marked
    in ``fallback``.
    """
    if isinstance(spec, str):
        spec = parse_threshold_method(spec)
    c = spec.scale if scale is None else float(scale)
    if not (math.isfinite(c) and c > 0):
        raise CalibrationError(f"threshold scale c must be a finite number > 0, got {c!r}")
    raw, it = _raw(stats, spec, N, per_channel, theta0, eps, max_iter)
    tmax = stats.tensor_max
    cmax = stats.max if per_channel else np.asarray(tmax)
    ok = np.isfinite(raw) & (raw > 0) & (cmax > 0)
    theta = raw.copy()
    if not np.all(ok):
        tensor_theta = None
        if per_channel and tmax > 0:
            t0 = theta0 if theta0 is None or np.ndim(theta0) == 0 else None
            t, _ = _raw(stats, spec, N, False, t0, eps, max_iter)
            tensor_theta = float(t)
        fb = 1.0
        if tensor_theta is not None and math.isfinite(tensor_theta) and tensor_theta > 0:
            fb = tensor_theta
        elif tmax > 0:
            fb = tmax
        theta = np.where(ok, raw, np.where(cmax > 0, cmax, fb))
    return Thresholds(spec=ThresholdSpec(spec.method, spec.q, c), theta=theta * c, raw=raw,
                      fallback=~ok, iterations=it)


# --------------------------------------------------------------------------------------------------
# Collecting statistics from a float graph


def collect_relu_stats(g, x: np.ndarray, batch_size: int = 64, *, keep_values: bool = True,
                       max_values: int | None = None, seed: int = 0) -> dict[str, ActivationStats]:
    """Statistics of the pre-activation (the input tensor) of every ``Relu`` op of an FGraph.

    Runs ``g`` on ``x`` (calibration inputs, batch first) in chunks of ``batch_size``, each chunk only
    up to the last Relu (``FGraph.run(..., upto=...)``). Returns ``{relu_op_name: ActivationStats}``
    in graph order. ``keep_values``/``max_values``/``seed`` are passed to :class:`ActivationStats`
    (memory: ``8 * C * min(count, max_values)`` bytes per ReLU, count = samples x spatial positions).
    """
    from .frontend.float_graph import Relu

    relus = [o for o in g.ops if isinstance(o, Relu)]
    if not relus:
        return {}
    x = np.asarray(x)
    if x.ndim < 1 or x.shape[0] == 0:
        raise CalibrationError(f"calibration data must be a non-empty batch, got shape {x.shape}")
    if tuple(x.shape[1:]) != tuple(g.input_shape):
        raise CalibrationError(f"calibration data has sample shape {tuple(x.shape[1:])}, the network's input "
                               f"'{g.input_name}' expects {tuple(g.input_shape)}")
    if int(batch_size) < 1:
        raise CalibrationError(f"batch_size must be >= 1, got {batch_size}")
    stats = {o.name: ActivationStats(keep_values=keep_values, max_values=max_values, seed=seed) for o in relus}
    last = relus[-1].name
    for i in range(0, x.shape[0], int(batch_size)):
        vals = g.run(x[i:i + int(batch_size)], upto=last)
        for o in relus:
            stats[o.name].update(vals[o.input])
    return stats


def collect_point_stats(g, x: np.ndarray, points: dict[str, str], batch_size: int = 64, *, keep_values: bool = True,
                        max_values: int | None = None, seed: int = 0) -> dict[str, ActivationStats]:
    """Statistics of |value| at a transformer's spiking points (``{op name: tensor}``: the values signed
    multi-threshold populations re-encode, ``lowering.tokens.spiking_points``), features as channels
    (the last axis moved to axis 1). Keyed by the op name, like ``collect_relu_stats``."""
    x = np.asarray(x)
    if x.ndim < 1 or x.shape[0] == 0:
        raise CalibrationError(f"calibration data must be a non-empty batch, got shape {x.shape}")
    if tuple(x.shape[1:]) != tuple(g.input_shape):
        raise CalibrationError(f"calibration data has sample shape {tuple(x.shape[1:])}, the network's input "
                               f"'{g.input_name}' expects {tuple(g.input_shape)}")
    stats = {op: ActivationStats(keep_values=keep_values, max_values=max_values, seed=seed) for op in points}
    for i in range(0, x.shape[0], int(batch_size)):
        vals = g.run(x[i:i + int(batch_size)])
        for op, tensor in points.items():
            v = np.abs(np.asarray(vals[tensor], np.float64))
            stats[op].update(np.moveaxis(v, -1, 1) if v.ndim > 2 else v)
    return stats
