# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 — Angular margin losses minimise the compactness loss (claims C1.a–C1.c)
#
# **The paper.** K. Wilkinghoff and F. Kurth, "Why do angular margin losses work well for
# semi-supervised anomalous sound detection?", IEEE/ACM TASLP 32 (2024), arXiv:2309.15643.
# Its abstract states that *minimising an angular margin loss (ArcFace, AdaCos, sub-cluster
# AdaCos, ...) also minimises the compactness loss* — the one-class objective of Deep SVDD,
# the mean squared distance of the embeddings to a centre. Only the abstract is public to us:
# the precise statements below are **our reconstruction**, written so that they can fail.
#
# * **C1.a (bound).** For every angular margin loss the per-example loss $L$ bounds the
#   compactness from above, $\lVert\tilde x-c_y\rVert^2\le g(L)$ with $g$ increasing
#   (tighter when the centres sum to zero). *Test:* derive $g$ below, then evaluate the
#   library's losses on $10^5$ random configurations for each of 7 loss families and count
#   violations.
# * **C1.b (free embeddings).** Gradient descent on the embeddings themselves
#   ("unconstrained features") with any angular margin loss drives the mean compactness
#   towards 0. *Test:* optimise embeddings for 8 loss families and several $s$, $N$, $D$;
#   Spearman correlation of (loss, compactness) along the trajectory, final angle to the own
#   centre.
# * **C1.c (networks).** Training an embedding network with an angular margin loss lowers
#   the compactness w.r.t. the class centres. *Test:* train small MLPs on synthetic labelled
#   data with 6 losses; loss and compactness per epoch.
#
# A reader needs only standard ML background: softmax cross-entropy, embeddings, gradient
# descent. Everything is computed with the `asdtheory` library, whose losses are tested
# against naive per-example implementations.

# %%
# %matplotlib inline
import warnings

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from flax import nnx
from scipy.stats import spearmanr

# Progress bars are off in the notebooks; tqdm's notice about missing ipywidgets is noise.
warnings.filterwarnings("ignore", message="IProgress not found")

from asdtheory import bounds, losses, models, train
from asdtheory.data.synthetic import sphere_mixture
from asdtheory.geometry import random_centres
from asdtheory.repro.claims import claim, fmt, fmt_e, records
from asdtheory.repro.runmode import run_mode

MODE = run_mode()
NOTEBOOK = "01_compactness"
EPS32 = float(np.finfo(np.float32).eps)
print("run mode:", MODE, "| devices:", [d.platform for d in jax.devices()])

# %% [markdown]
# ## Theory
#
# **Notation.** An embedding $x\in\mathbb R^D$ is normalised, $\tilde x = x/\lVert x\rVert$;
# there are $N$ classes (the labels of an *auxiliary* classification task, e.g. machine type
# or attribute) with unit centres $c_1,\dots,c_N$, and $\cos\theta_k=\langle\tilde x,c_k\rangle$.
# An angular margin loss is a softmax cross-entropy over scaled cosines in which the target
# logit is replaced by a *target-logit function* $f$:
#
# $$L=-\log\frac{e^{s f(\theta_y)}}{e^{s f(\theta_y)}+\sum_{k\ne y}e^{s\cos\theta_k}}
#    =\log\Bigl(1+\sum_{k\ne y}e^{\,s(\cos\theta_k-f(\theta_y))}\Bigr),$$
#
# with $f(\theta)=\cos\theta$ for the normalised softmax and AdaCos (AdaCos only chooses $s$),
# $f(\theta)=\cos\theta-m$ for CosFace, $f(\theta)=\cos(\theta+m)$ for ArcFace (with the usual
# monotone continuation $\cos\theta-m\sin m$ beyond $\theta+m>\pi$) and SphereFace's
# $\psi(\theta)\le\cos\theta$. All of them are decreasing in $\theta$.
#
# **Chord identity.** For unit vectors the squared Euclidean distance is a function of the
# angle only: $\lVert\tilde x-c_y\rVert^2 = 2-2\cos\theta_y$. So the *compactness loss* of
# Deep SVDD, evaluated on normalised embeddings with the class centre as its centre, is
# $2-2\cos\theta_y$ — it is small exactly when the target angle is small.
#
# **The bound (C1.a).** Every non-target cosine is at least $-1$, so
#
# $$L\;\ge\;\ell(\theta_y):=\log\bigl(1+(N-1)\,e^{-s(1+f(\theta_y))}\bigr)
# \iff f(\theta_y)\;\ge\;a(L):=\frac1s\log\frac{N-1}{e^{L}-1}-1 .$$
#
# Since $f$ is decreasing, $\theta_y\le f^{-1}(a(L))$ and therefore
#
# $$\lVert\tilde x-c_y\rVert^2\;\le\;g(L):=2-2\cos f^{-1}\bigl(a(L)\bigr),\qquad
# g(L)=4-\frac2s\log\frac{N-1}{e^{L}-1}\ \text{ for } f=\cos .$$
#
# $g$ is increasing in $L$: **driving the angular margin loss down forces the compactness
# down**. For CosFace $f^{-1}(a)=\arccos(a+m)$; for ArcFace $f^{-1}(a)=\arccos(a)-m$ (and the
# continuation branch below $a=-1$). Any $f\le\cos$ (all margins $m\ge0$, SphereFace) also
# satisfies the margin-free bound. *Sub-centres* (sub-center ArcFace, sub-cluster AdaCos): the
# same bound holds for the compactness w.r.t. the **nearest sub-centre** of the class,
# because the class's summed target term is at most $M e^{s\cos\theta^*}$ and each of the
# $(N-1)M$ non-target terms is at least $e^{-s}$. *AdaProj* uses cosines to class
# subspaces, which lie in $[0,1]$: replace the $-1$ by $0$.
#
# **Tighter bound for centres summing to zero** (e.g. the regular simplex). Then
# $\sum_{k\ne y}\cos\theta_k=-\cos\theta_y$ and Jensen's inequality ($\exp$ is convex) gives
# $e^L-1\ge(N-1)\exp\bigl(-\tfrac{sN}{N-1}\cos\theta_y\bigr)$, i.e.
#
# $$\lVert\tilde x-c_y\rVert^2\;\le\;2-\frac{2(N-1)}{sN}\log\frac{N-1}{e^{L}-1},$$
#
# with equality for $N=2$ (a single non-target term).
#
# These functions are `asdtheory.bounds.loss_lower_bound` ($\ell$), `compactness_bound`
# ($g=\ell^{-1}$) and their simplex versions; `tests/test_bounds.py` checks that $\ell$ is
# attained when all non-target centres sit at $-\tilde x$ and that $g$ inverts $\ell$.

# %% [markdown]
# ## C1.a — the bound on random configurations
#
# A *configuration* is one embedding, its label, $N$ centres (or $N\times M$ sub-centres /
# subspace bases), a scale $s$ and a margin $m$. `bounds.random_configurations` draws them
# with $D$ uniform in 2..256 (zero padding to 256 keeps every inner product exact),
# $s$ log-uniform in [1, 64], $m$ uniform in [0, 0.8], the target angle uniform in $[0,\pi]$
# (so the compactness covers [0, 4]) and non-target centres from "almost at $-\tilde x$"
# (where the bound is nearly tight) to uniform on the sphere. The losses run as one
# `jax.vmap` over configurations; configurations are grouped by $N\in\{2,4,16,64\}$ (a
# different $N$ is a different array shape) and each group is evaluated in jit-compiled
# chunks. Every group uses $M=2$ sub-centres; the single-centre losses use the first one.
#
# **Rounding.** A bound that is attained (the $N=2$ simplex case) cannot be checked to
# more than float32 precision: the loss is a log-sum-exp of logits of size up to $s$. We
# check $L\ge\ell(c)$ in the loss domain and count a violation only when
# $L<\ell(c)-16\,\varepsilon s$ ($\varepsilon=2^{-23}$); the number of *strict* violations
# and the largest deficit in units of $\varepsilon s$ are reported too.

# %%
NUM_CONFIGS = 100_000 if MODE == "ci" else 1_000_000
GROUPS = {2: 0.4, 4: 0.3, 16: 0.2, 64: 0.1}  # N -> share of the configurations
CHUNK_FLOATS = 2**22  # at most this many centre coordinates per compiled chunk
NUM_SUBCENTRES = 2

# name -> (per-example loss of one configuration, which compactness, target logit f, b)
FAMILIES = {
    "normalized softmax / AdaCos": (
        lambda x, c, y, s, m: losses.normalized_softmax(x, c[:, 0], y, scale=s),
        "centre", "cosine", -1.0),
    "CosFace": (lambda x, c, y, s, m: losses.cosface(x, c[:, 0], y, scale=s, margin=m),
                "centre", "cosface", -1.0),
    "ArcFace": (lambda x, c, y, s, m: losses.arcface(x, c[:, 0], y, scale=s, margin=m),
                "centre", "arcface", -1.0),
    "SphereFace (m=4)": (
        lambda x, c, y, s, m: losses.sphereface(x, c[:, 0], y, scale=s, margin=4),
        "centre", "cosine", -1.0),
    "sub-center ArcFace": (
        lambda x, c, y, s, m: losses.subcenter_arcface(x, c, y, scale=s, margin=m),
        "sub-centre", "arcface", -1.0),
    "sub-cluster AdaCos": (lambda x, c, y, s, m: losses.subcluster_adacos(x, c, y, scale=s),
                           "sub-centre", "cosine", -1.0),
    "AdaProj": (lambda x, c, y, s, m: losses.adaproj(x, c, y, scale=s),
                "subspace", "cosine", 0.0),
}
COMPACTNESS = {
    "centre": lambda x, c, y: losses.compactness(x, c[:, 0], y),
    "sub-centre": lambda x, c, y: losses.compactness(x, c, y),
    "subspace": lambda x, c, y: 2.0 - 2.0 * losses.subspace_cosines(x, c)[:, y[0]],
}


def evaluate_families(cfg):
    """Losses and compactness values of a chunk of configurations (one vmap)."""

    def one(x, c, y, s, m):
        out = {name: fn(x, c, y, s, m)[0] for name, (fn, *_rest) in FAMILIES.items()}
        return out | {kind: fn(x, c, y)[0] for kind, fn in COMPACTNESS.items()}

    out = jax.vmap(one)(cfg.embeddings, cfg.centres, cfg.labels, cfg.scale, cfg.margin)
    return out | {"scale": cfg.scale, "margin": cfg.margin}


def evaluate_simplex(cfg):
    """Margin losses with the regular simplex as centres."""

    def one(x, c, y, s, m):
        out = {name: fn(x, c[:, None], y, s, m)[0]
               for name, (fn, kind, *_rest) in FAMILIES.items() if kind == "centre"}
        return out | {"centre": losses.compactness(x, c, y)[0]}

    out = jax.vmap(one)(cfg.embeddings, cfg.centres, cfg.labels, cfg.scale, cfg.margin)
    return out | {"scale": cfg.scale, "margin": cfg.margin}


def run_group(fn, key, num_classes, share, **kwargs):
    count = int(NUM_CONFIGS * share)
    chunk = count
    while chunk * num_classes * NUM_SUBCENTRES * 256 > CHUNK_FLOATS or count % chunk:
        chunk -= 1
    out = bounds.map_configurations(fn, key, count, chunk_size=chunk, num_classes=num_classes,
                                    **kwargs)
    return out | {"N": np.full(count, num_classes)}


def concat(parts):
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


key_general, key_simplex, key_cloud = jax.random.split(jax.random.key(2024), 3)
general = concat([run_group(evaluate_families, jax.random.fold_in(key_general, n), n, share,
                            num_subcentres=NUM_SUBCENTRES) for n, share in GROUPS.items()])
simplex = concat([run_group(evaluate_simplex, jax.random.fold_in(key_simplex, n), n, share,
                            centres="simplex") for n, share in GROUPS.items()])
print(f"{len(general['scale'])} general and {len(simplex['scale'])} simplex configurations; "
      f"compactness covers [{fmt(general['centre'].min(), 2)}, {fmt(general['centre'].max(), 2)}]")

# %% [markdown]
# For every family we compare the computed loss $L$ with the smallest loss the bound allows
# at the computed compactness, $\ell(c)$, and report: violations beyond rounding, strict
# violations, the largest deficit $\max(\ell(c)-L)/(\varepsilon s)$, and the share of
# configurations that come within 0.01 of the bound (so the test is not vacuous).


# %%
def bound_check(out, name, kind, target_logit, b, simplex_centres=False):
    comp, loss, s = out[kind], out[name], out["scale"]
    if simplex_centres:
        ell = bounds.simplex_loss_lower_bound(comp, num_classes=out["N"], scale=s)
    else:
        ell = bounds.loss_lower_bound(comp, num_classes=out["N"], scale=s, margin=out["margin"],
                                      target_logit=target_logit, min_logit=b)
    deficit = (np.asarray(ell) - loss) / (EPS32 * s)
    return {"configs": loss.size, "violations": int(np.sum(deficit > 16)),
            "strict": int(np.sum(deficit > 0)), "max_deficit": float(deficit.max()),
            "near_tight_share": float(np.mean(loss - np.asarray(ell) < 0.01))}


# tolerance: abs=0.1; the % within 0.01 of the bound moved by 0.05 (Zen 4 AVX-512 vs AVX2), x2
rows = {name: bound_check(general, name, kind, tl, b)
        for name, (_fn, kind, tl, b) in FAMILIES.items()}
rows |= {f"{name} [simplex]": bound_check(simplex, name, "centre", "cosine", -1.0, True)
         for name, (_fn, kind, *_r) in FAMILIES.items() if kind == "centre"}
# The strict counts, exact deficits and near-tight shares depend on the last bits of float32;
# printed are the deficit rounded up to a whole multiple of eps*s and the share in %.
print(f"{'loss family':38s} {'configs':>8s} {'violations':>10s} "
      f"{'max deficit/(eps s) <=':>23s} {'% within 0.01':>13s}")
for name, r in rows.items():
    print(f"{name:38s} {r['configs']:8d} {r['violations']:10d} "
          f"{int(np.ceil(r['max_deficit'])):23d} {100 * r['near_tight_share']:13.1f}")

# %% [markdown]
# Many configurations sit *on* the bound — the loss then equals $\ell(c)$ up to the last
# bits of float32, so $L<\ell(c)$ by rounding happens in some 3–25 % of them (these
# "strict" shares are in the claim's figures) — but the largest deficit stays a few
# $\varepsilon s$, far below the tolerance. Now the picture: for fixed $N=10$, $s=16$,
# $m=0.5$, the cloud of (loss, compactness) pairs lies below the curve $g(L)$ of its family.

# %%
cloud = run_group(evaluate_families, key_cloud, 10, 0.04, num_subcentres=NUM_SUBCENTRES,
                  scale_range=(16.0, 16.0), margin_range=(0.5, 0.5))
shown = ["normalized softmax / AdaCos", "CosFace", "ArcFace", "sub-cluster AdaCos"]
grid_l = np.geomspace(1e-6, 30, 400)
fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), sharey=True)
for ax, name in zip(axes, shown, strict=True):
    _fn, kind, tl, b = FAMILIES[name]
    ax.scatter(cloud[name], cloud[kind], s=2, alpha=0.3, label="random configurations")
    g = bounds.compactness_bound(grid_l, num_classes=10, scale=16.0, margin=0.5,
                                 target_logit=tl, min_logit=b)
    ax.plot(grid_l, g, "k-", lw=1.5, label="bound g(L)")
    ax.set_xscale("log")
    ax.set_xlim(1e-6, 30)
    ax.set_title(name)
    ax.set_xlabel("per-example loss L")
axes[0].set_ylabel(r"compactness $\|\tilde x - c_y\|^2$")
axes[0].legend(loc="upper left", markerscale=4)
fig.suptitle("C1.a: compactness never exceeds g(L)  (N = 10, s = 16, m = 0.5)")
fig.tight_layout()
plt.show()

# %%
fig, ax = plt.subplots(figsize=(5.5, 4.5))
for name in ("normalized softmax / AdaCos", "ArcFace", "AdaProj"):
    _fn, kind, tl, b = FAMILIES[name]
    g = bounds.compactness_bound(general[name], num_classes=general["N"],
                                 scale=general["scale"], margin=general["margin"],
                                 target_logit=tl, min_logit=b)
    ax.scatter(np.asarray(g)[::10], general[kind][::10], s=1, alpha=0.3, label=name)
ax.plot([0, 4], [0, 4], "k--", lw=1, label="compactness = g(L)")
ax.set_xlabel("bound g(L) from the loss")
ax.set_ylabel(r"compactness $\|\tilde x - c_y\|^2$")
ax.set_title("all N, D, s, m (every 10th configuration)")
ax.legend(markerscale=6, fontsize=8)
fig.tight_layout()
plt.show()

# %%
# tolerance: abs=1.4e-4; the strict shares moved by 7e-5 (Zen 4 AVX-512 vs AVX2), x2
total_pairs = sum(r["configs"] for r in rows.values())
total_violations = sum(r["violations"] for r in rows.values())
max_deficit = max(r["max_deficit"] for r in rows.values())
verdict = claim(
    "C1.a", total_violations == 0,
    f"violations {total_violations} of {total_pairs} (configuration, loss) pairs "
    f"({NUM_CONFIGS} configurations x {len(FAMILIES)} families + simplex bound x 4); "
    f"largest rounding deficit <= {int(np.ceil(max_deficit))} eps*s",
    statement="For angular margin losses the per-example loss bounds the compactness: "
              "||x~ - c_y||^2 <= g(L), g increasing (tighter for centres summing to zero).",
    figures={"violations": total_violations, "pairs": total_pairs,
             "max_deficit_eps_s": round(max_deficit, 2),
             "per_family": {k: {"violations": v["violations"],
                                "strict_share": v["strict"] / v["configs"]}
                            for k, v in rows.items()}},
    notebook=NOTEBOOK,
)

# %% [markdown]
# **What the bound does and does not say.** It holds for every configuration we tried, and
# the clouds touch the curve, so it cannot be tightened in general. But $g(L)$ is small only
# when $L$ is *extremely* small once $s$ is large: for $f=\cos$, $g(L)\le c$ needs
# $e^L-1\le(N-1)\,e^{-s(4-c)/2}$, a loss exponentially small in $s$. Below, $g$ at losses
# of $10^{-3}$ and $10^{-6}$, values training typically reaches:

# %%
for s_value in (4.0, 16.0, 30.0, 64.0):
    g_small = bounds.compactness_bound(1e-3, num_classes=10, scale=s_value)
    g_tiny = bounds.compactness_bound(1e-6, num_classes=10, scale=s_value)
    print(f"N = 10, s = {s_value:4.0f}: g(1e-3) = {fmt(g_small, 2)}, g(1e-6) = {fmt(g_tiny, 2)}"
          f"  (compactness 2 = 90 degrees)")

# %% [markdown]
# So with a small scale the loss controls the compactness tightly, while at $s\ge16$ a loss
# of $10^{-3}$ still allows angles of 90° and more. Minimising the loss forces compactness
# *in the limit*, but whether an optimiser gets there depends on the scale — which C1.b
# measures.

# %% [markdown]
# ## C1.b — free embeddings ("unconstrained features")
#
# The bound says a small loss *forces* a small compactness. Does minimising the loss
# actually get there? We remove the network and optimise the embeddings themselves (the
# "unconstrained features" model of neural-collapse theory): $8$ embeddings per class start
# as random Gaussian vectors, fixed random unit centres (sub-centres: $M=4$ per class;
# AdaProj: a random 4-dimensional subspace per class) and Adam (step 0.05, 200 steps). The
# AdaCos-type losses update their scale with the AdaCos rule, starting from $s$.
#
# **Check, fixed before running:** for every loss and setting, the final mean compactness
# is below 10 % of the initial one *and* the Spearman rank correlation between loss and
# compactness along the trajectory is above 0.9.

# %%
SCALES = jnp.array([4.0, 16.0, 64.0])
SHAPES = [(10, 32), (64, 16), (4, 256)]  # (N classes, D dimensions)
PER_CLASS, STEPS, LR, M_SUB = 8, 200, 0.05, 4

# name -> (loss(x, centres, y, s), next_scale or None, uses (N, M, D) centres)
FREE = {
    "normalized softmax": (lambda x, c, y, s: losses.normalized_softmax(x, c, y, scale=s),
                           None, False),
    "CosFace (m=0.35)": (lambda x, c, y, s: losses.cosface(x, c, y, scale=s, margin=0.35),
                         None, False),
    "ArcFace (m=0.5)": (lambda x, c, y, s: losses.arcface(x, c, y, scale=s, margin=0.5),
                        None, False),
    "SphereFace (m=4)": (lambda x, c, y, s: losses.sphereface(x, c, y, scale=s, margin=4),
                         None, False),
    "AdaCos": (lambda x, c, y, s: losses.adacos(x, c, y, scale=s),
               lambda x, c, y, s: losses.adacos_scale(x, c, y, scale=s), False),
    "sub-center ArcFace": (
        lambda x, c, y, s: losses.subcenter_arcface(x, c, y, scale=s, margin=0.5), None, True),
    "sub-cluster AdaCos": (
        lambda x, c, y, s: losses.subcluster_adacos(x, c, y, scale=s),
        lambda x, c, y, s: losses.subcluster_adacos_scale(x, c, y, scale=s), True),
    "AdaProj": (lambda x, c, y, s: losses.adaproj(x, c, y, scale=s),
                lambda x, c, y, s: losses.adaproj_scale(x, c, y, scale=s), True),
}


def free_compactness(name, x, c, y):
    if name == "AdaProj":
        return 2.0 - 2.0 * jnp.take_along_axis(losses.subspace_cosines(x, c), y[:, None], 1)[:, 0]
    return losses.compactness(x, c, y)


def optimise_free(name, key, num_classes, dim):
    """Adam on free embeddings for every scale in SCALES at once (vmap over s)."""
    loss_fn, scale_fn, sub = FREE[name]
    k_c, k_x = jax.random.split(key)
    centres = random_centres(k_c, num_classes, dim, num_subcentres=M_SUB if sub else None)
    y = jnp.repeat(jnp.arange(num_classes), PER_CLASS)
    x0 = jax.random.normal(k_x, (y.size, dim))
    tx = optax.adam(LR)

    def trajectory(s0):
        def step(carry, _):
            x, state, s = carry
            if scale_fn is not None:
                s = scale_fn(x, centres, y, s)
            loss, grad = jax.value_and_grad(lambda z: jnp.mean(loss_fn(z, centres, y, s)))(x)
            updates, state = tx.update(grad, state)
            comp = jnp.mean(free_compactness(name, x, centres, y))
            return (optax.apply_updates(x, updates), state, s), (loss, comp)

        (x, _, s), (loss, comp) = jax.lax.scan(step, (x0, tx.init(x0), s0), length=STEPS)
        final = free_compactness(name, x, centres, y)
        angle = jnp.degrees(jnp.arccos(jnp.clip(1.0 - final / 2.0, -1.0, 1.0)))
        return loss, comp, jnp.mean(final), jnp.mean(angle), jnp.mean(loss_fn(x, centres, y, s))

    return jax.jit(jax.vmap(trajectory))(SCALES)


# %%
# tolerance: abs=0.3; Spearman moved by 0.092 (AVX-512 vs AVX2) and 0.15 (Zen 4 AVX-512 vs AVX2), x2
# (where the loss has flattened, rounding noise orders its tail; the other columns did not move)
key_free = jax.random.key(7)
free_rows = []
curves = {}
for shape_index, (num_classes, dim) in enumerate(SHAPES):
    for name_index, name in enumerate(FREE):
        key = jax.random.fold_in(jax.random.fold_in(key_free, shape_index), name_index)
        loss, comp, final, angle, final_loss = optimise_free(name, key, num_classes, dim)
        for i, s in enumerate(np.asarray(SCALES)):
            rho = spearmanr(np.asarray(loss[i]), np.asarray(comp[i])).statistic
            free_rows.append({"loss": name, "N": num_classes, "D": dim, "s": float(s),
                              "initial": float(comp[i, 0]), "final": float(final[i]),
                              "final_loss": float(final_loss[i]),
                              "angle": float(angle[i]), "rho": float(rho)})
            if (num_classes, dim) == SHAPES[0] and s == 16.0:
                curves[name] = (np.asarray(loss[i]), np.asarray(comp[i]))

print(f"{'loss':20s} {'N':>3s} {'D':>4s} {'s':>5s} {'compactness start -> end':>25s} "
      f"{'angle (deg)':>11s} {'final loss':>10s} {'Spearman':>8s}")
for r in free_rows:
    print(f"{r['loss']:20s} {r['N']:3d} {r['D']:4d} {r['s']:5.0f} "
          f"{fmt(r['initial'], 3):>12s} -> {fmt(r['final'], 4):>9s} {fmt(r['angle'], 1):>11s} "
          f"{fmt_e(r['final_loss'], 1, below=1e-5):>10s} {fmt(r['rho'], 2):>8s}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for name, (loss, comp) in curves.items():
    axes[0].plot(loss, label=name)
    axes[1].plot(comp, label=name)
axes[0].set_yscale("log")
axes[0].set_ylabel("mean loss")
axes[1].set_yscale("log")
axes[1].set_ylabel(r"mean compactness $\|\tilde x - c_y\|^2$")
for ax in axes:
    ax.set_xlabel("gradient step")
axes[1].legend(fontsize=8)
fig.suptitle(f"C1.b: free embeddings, N = {SHAPES[0][0]}, D = {SHAPES[0][1]}, s = 16")
fig.tight_layout()
plt.show()

# %%
passed = [r for r in free_rows if r["final"] < 0.1 * r["initial"] and r["rho"] > 0.9]
failed = [r for r in free_rows if r not in passed]
worst_ratio = max(r["final"] / r["initial"] for r in free_rows)
min_rho = min(r["rho"] for r in free_rows)
verdict = claim(
    "C1.b", not failed,
    f"{len(passed)} of {len(free_rows)} (loss, N, D, s) runs reach final/initial compactness "
    f"< 0.1 and Spearman > 0.9; worst ratio {fmt(worst_ratio, 3)}, lowest Spearman "
    f"{fmt(min_rho, 3)}, largest final angle {fmt(max(r['angle'] for r in free_rows), 1)} deg",
    statement="Gradient descent on free embeddings with any angular margin loss drives the "
              "mean compactness towards 0 (loss and compactness fall together).",
    figures={"runs": len(free_rows), "passed": len(passed), "worst_ratio": worst_ratio,
             "min_spearman": min_rho,
             "failed": [f"{r['loss']} N={r['N']} D={r['D']} s={r['s']:.0f}" for r in failed]},
    notebook=NOTEBOOK,
)

# %% [markdown]
# **Reading C1.b.** The verdict is *not supported* as we stated it ("every loss, every
# setting"), and the table shows where and why it breaks:
#
# * **Large fixed scales stall.** With $s=16$ or $64$ the fixed-scale losses drive the loss
#   to $10^{-3}$ … $10^{-8}$ (in float32 sometimes to exactly 0) while the embeddings still
#   sit tens of degrees from their centres: once every target logit beats the others by a
#   few units of $1/s$, the gradient vanishes. This is the regime where the C1.a bound says
#   little.
# * **Small scales have an off-centre optimum.** At $s=4$ the loss does not saturate, but
#   its minimiser balances "towards the own centre" against "away from the other centres":
#   without a margin (normalised softmax, and CosFace's small additive margin) the
#   embeddings settle some 25–30° from their centres. An *angular* margin (ArcFace,
#   sub-center ArcFace, SphereFace) pulls them in to within a few degrees.
# * **Adaptive scales.** AdaCos and sub-cluster AdaCos set $s$ so that the loss stays near
#   $\log 2$; their compactness ends moderately low (about 7–33°) in every setting, but as
#   the scale changes along the way, loss and compactness are not always rank-correlated.
# * **AdaProj** pulls embeddings into the class *subspaces* (compactness w.r.t. the
#   subspace falls to 7–30°), while its loss hardly moves after the first steps: low
#   Spearman.
#
# Loss and compactness do fall together in the fixed-scale runs (Spearman 0.7–1.0); the
# part of the claim that fails is "towards 0", which holds for angular margins at moderate
# scales but not for every loss and scale.

# %% [markdown]
# ## C1.c — embedding networks on synthetic data
#
# Now the embeddings come from a network. The data are labelled clusters on the sphere
# (`asdtheory.data.synthetic.sphere_mixture`: 8 classes in $\mathbb R^{32}$, 64 samples per
# class, concentration 16, so the classes overlap a little). A small MLP (32 → 64 → 64 → 16,
# ReLU) is trained with each angular margin loss of `asdtheory.models.make_head` (fixed random
# centres, the library's default scales and margins: $s=30$ for the fixed-scale losses,
# AdaCos-type scales adaptive; $M=4$ sub-centres / subspace dimension) by Adam for 30 epochs.
# After every epoch we record the mean loss and the mean compactness
# $2-2\cos\theta_y$ of the training embeddings w.r.t. their class centre (nearest
# sub-centre; own subspace for AdaProj).
#
# **Check, fixed before running:** for every loss the final compactness is below half of
# the compactness of the untrained network, and loss and compactness are rank-correlated
# over the epochs (Spearman > 0.8).

# %%
NET_METHODS = ["normalized-softmax", "arcface", "cosface", "adacos", "subcluster-adacos",
               "adaproj"]
EPOCHS = 30 if MODE == "ci" else 100
key_data, key_net = jax.random.split(jax.random.key(11))
x_net, y_net, _ = sphere_mixture(key_data, num_classes=8, dim=32, samples_per_class=64,
                                 concentration=16.0)
config = train.TrainConfig(epochs=EPOCHS, batch_size=64, learning_rate=1e-3, progress=False)

histories, net_rows = {}, []
for i, method in enumerate(NET_METHODS):
    model = models.MLPEmbedder(32, 16, hidden=(64, 64), rngs=nnx.Rngs(100 + i))
    extra = {"num_subclusters": 4} if method in ("subcluster-adacos", "adaproj") else {}
    head = models.make_head(method, embed_dim=16, num_classes=8, rngs=nnx.Rngs(200 + i),
                            **extra)
    initial = float(jnp.mean(head.compactness(train.embed(model, x_net), y_net)))
    history = train.fit(model, head, x_net, y_net, config=config,
                        key=jax.random.fold_in(key_net, i),
                        callbacks=[train.compactness_callback(x_net, y_net)])
    histories[method] = history
    rho = spearmanr(history["loss"], history["compactness"]).statistic
    net_rows.append({"method": method, "initial": initial,
                     "final": history["compactness"][-1], "loss0": history["loss"][0],
                     "loss": history["loss"][-1], "rho": float(rho)})

print(f"{'method':20s} {'loss epoch 1 -> last':>22s} {'compactness untrained -> last':>30s} "
      f"{'Spearman':>8s}")
for r in net_rows:
    print(f"{r['method']:20s} {fmt(r['loss0'], 3):>10s} -> {fmt(r['loss'], 4):>8s} "
          f"{fmt(r['initial'], 3):>18s} -> {fmt(r['final'], 4):>8s} {fmt(r['rho'], 3):>8s}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
epochs = np.arange(1, EPOCHS + 1)
for r in net_rows:
    h = histories[r["method"]]
    axes[0].plot(epochs, h["loss"], label=r["method"])
    axes[1].plot(np.r_[0, epochs], [r["initial"], *h["compactness"]], label=r["method"])
axes[0].set_ylabel("mean training loss")
axes[0].set_yscale("log")
axes[1].set_ylabel(r"mean compactness $2 - 2\cos\theta_y$")
for ax in axes:
    ax.set_xlabel("epoch")
axes[1].legend(fontsize=8)
fig.suptitle("C1.c: MLP on 8 synthetic classes, one curve per angular margin loss")
fig.tight_layout()
plt.show()

# %%
net_failed = [r["method"] for r in net_rows
              if not (r["final"] < 0.5 * r["initial"] and r["rho"] > 0.8)]
verdict = claim(
    "C1.c", not net_failed,
    f"{len(net_rows) - len(net_failed)} of {len(net_rows)} losses: compactness "
    f"{fmt(max(r['initial'] for r in net_rows), 2)} (max untrained) -> "
    f"{fmt(max(r['final'] for r in net_rows), 3)} (max final); lowest Spearman "
    f"{fmt(min(r['rho'] for r in net_rows), 3)}"
    + (f"; failed: {', '.join(net_failed)}" if net_failed else ""),
    statement="Training an embedding network with an angular margin loss lowers the "
              "compactness w.r.t. the class centres together with the loss.",
    figures={r["method"]: {"initial": r["initial"], "final": r["final"], "spearman": r["rho"]}
             for r in net_rows},
    notebook=NOTEBOOK,
)

# %% [markdown]
# **Reading C1.c.** Every network lowers the compactness while the loss falls (Spearman
# near 1 for all six losses). Whether it falls *enough* depends again on the scale: the
# adaptive-scale losses (AdaCos, sub-cluster AdaCos, AdaProj) end with the lowest
# compactness, ArcFace and CosFace (fixed $s=30$, with a margin) in between, and the
# margin-free normalised softmax with $s=30$ reaches a near-zero loss while its embeddings
# stay far from their centres — the fixed-scale stall of C1.b, now with a network. Under our
# criterion (final below half the untrained compactness) that one loss fails, so C1.c is
# *not supported* as a statement about every angular margin loss; it holds for the five
# losses with a margin or an adaptive scale.
#
# ## Summary
#
# C1.a (the bound) holds without exception. C1.b and C1.c show that minimising an angular
# margin loss lowers the compactness, but drives it *towards 0* only in part of the design
# space: with an angular margin at a moderate scale, or with an adaptive (AdaCos-type) scale
# that keeps the loss from saturating — consistent with the paper's choice of (sub-cluster)
# AdaCos — and not with a large fixed scale and no margin.

# %%
print(f"{'claim':6s} {'verdict':14s} summary")
for record in records():
    print(f"{record.id:6s} {record.verdict:14s} {record.summary}")
