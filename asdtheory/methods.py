"""The registry of training methods: what each objective is, declared once.

A method is what a detector learns its embedding with: a loss on class centres (the angular
margin losses and their controls), a one-class objective or a reconstruction. Everything that
depends on the method -- the loss head (``models.make_head``), the network's bias terms, the
examples the network sees, the score back-ends, whether mixup's soft labels apply, whether
labels are needed -- reads it from its :class:`Method` entry here; nothing else tests method
names. Adding a method is one entry in :data:`METHODS` (plus its tests)::

    >>> from asdtheory import methods
    >>> m = methods.get("subcluster-adacos")
    >>> m.centres, m.adaptive_scale, m.backends[0]
    ('subcentres', True, 'kmeans')
    >>> methods.parse("arcface+random-labels")
    (Method('arcface'), True)

``<method>`` + :data:`RANDOM_LABELS` is a modifier, not an entry: the same method trained on
the clip labels permuted at random (same class sizes, no relation to the sound), the control
that tells what the auxiliary task's labels contribute.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

from asdtheory import losses
from asdtheory._registry import lookup

__all__ = ["LABELLED", "METHODS", "RANDOM_LABELS", "Method", "get", "names", "parse"]

RANDOM_LABELS = "+random-labels"


@dataclasses.dataclass(frozen=True)
class Method:
    """One training objective.

    Attributes:
      name: the registry name (``--method`` on the command line).
      summary: one line for help texts and tables.
      head: "centres" (class centres on the unit sphere: ``models.AngularHead``), "one-class"
        (``models.DeepSVDDHead``) or "reconstruction" (``models.ReconstructionHead`` of
        ``models.Autoencoder``, which replaces the embedder).
      loss: for a "centres" head, the per-example loss ``loss(x, centres, labels, *, scale,
        **options)`` of ``asdtheory.losses``; None for the others (their head owns it).
      scale_update: the AdaCos scale rule ``update(x, centres, labels, *, scale)``
        (adaptive scale), or None (fixed scale).
      scale_variants: whether ``scale_update`` takes ``variant=`` ("faithful": the paper's
        formula; "code": the author's public implementation; ``losses.adacos``).
      centres: "class" (N, D), "subcentres" (N, M, D) or "subspaces" (N, M, D) orthonormal
        bases (AdaProj: cosines to the projection onto the subspace); None without centres.
      margin: whether the loss takes an additive margin (ArcFace, CosFace).
      soft_labels: whether the head accepts mixup's soft labels.
      bias: bias terms (and batch-norm offsets) in the network; False for the one-class
        objective, Ruff et al.'s remedy against the trivial constant solution.
      trainable_centres: whether the centres may be learned (AdaProj's subspaces are fixed;
        a pull without push towards learnable centres has the trivial solution).
      linear: the head is a linear classifier: its centres are the weights W (N, D), always
        learned (``trainable_centres`` aside), with a learned bias b (N,) per class, and
        ``loss(x, W, labels, *, bias)`` takes the unnormalised logits x W^T + b (no scale).
      backends: score back-ends of ``scoring.BACKENDS`` that apply; the first is the default.
      reference: where the formula comes from.
    """

    name: str
    summary: str
    head: Literal["centres", "one-class", "reconstruction"]
    backends: tuple[str, ...]
    reference: str
    loss: Callable | None = None
    scale_update: Callable | None = None
    centres: Literal["class", "subcentres", "subspaces"] | None = None
    scale_variants: bool = False
    margin: bool = False
    soft_labels: bool = True
    bias: bool = True
    trainable_centres: bool = True
    linear: bool = False

    def __repr__(self) -> str:
        return f"Method({self.name!r})"

    @property
    def uses_labels(self) -> bool:
        """Whether the method learns the auxiliary classification task (needs labels)."""
        return self.head == "centres"

    @property
    def adaptive_scale(self) -> bool:
        return self.scale_update is not None

    @property
    def has_subcentres(self) -> bool:
        """Whether the method has M centres per class (``num_subclusters`` applies)."""
        return self.centres in ("subcentres", "subspaces")


_CENTRE_BACKENDS = ("kmeans", "nearest-centre", "knn")


def _subcluster_scale(x, centres, labels, *, scale, variant="faithful"):
    return losses.subcluster_adacos_scale(x, centres, labels, scale=scale, variant=variant)


def _pull_to_class_centre(x, centres, labels, *, scale):
    del scale  # no softmax: nothing to scale
    return losses.compactness(x, centres, labels)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("normalized-softmax", "softmax over cosines to class centres, fixed scale",
           head="centres", loss=losses.normalized_softmax, centres="class",
           backends=_CENTRE_BACKENDS, reference="Wang et al., NormFace, ACM MM 2017"),
    Method("arcface", "additive angular margin m on the target angle, fixed scale",
           head="centres", loss=losses.arcface, centres="class", margin=True,
           soft_labels=False, backends=_CENTRE_BACKENDS,
           reference="Deng et al., ArcFace, CVPR 2019"),
    Method("cosface", "additive cosine margin m on the target cosine, fixed scale",
           head="centres", loss=losses.cosface, centres="class", margin=True,
           soft_labels=False, backends=_CENTRE_BACKENDS,
           reference="Wang et al., CosFace, CVPR 2018"),
    Method("adacos", "softmax over cosines, adaptive scale", head="centres",
           loss=losses.adacos, scale_update=losses.adacos_scale, centres="class",
           backends=_CENTRE_BACKENDS, reference="Zhang et al., AdaCos, CVPR 2019"),
    Method("subcluster-adacos", "AdaCos over M sub-centres per class (the reference system's)",
           head="centres", loss=losses.subcluster_adacos, scale_update=_subcluster_scale,
           scale_variants=True, centres="subcentres", backends=_CENTRE_BACKENDS,
           reference="Wilkinghoff, IJCNN 2021"),
    Method("adaproj", "cosine to the projection onto an M-dimensional class subspace",
           head="centres", loss=losses.adaproj, scale_update=losses.adaproj_scale,
           centres="subspaces", trainable_centres=False, backends=_CENTRE_BACKENDS,
           reference="Wilkinghoff, AdaProj, DCASE 2024 Workshop"),
    Method("class-compactness", "compactness 2 - 2 cos(theta_y) to the own fixed class centre: "
           "the labels' pull without the softmax's push (a control)", head="centres",
           loss=_pull_to_class_centre, centres="class", soft_labels=False,
           trainable_centres=False, backends=_CENTRE_BACKENDS,
           reference="Ruff et al. 2018 (compactness) with class centres"),
    Method("softmax", "plain softmax classifier: cross-entropy of x W^T + b, W and b learned "
           "(a control: the labels without normalisation or margin)", head="centres",
           loss=losses.softmax, centres="class", linear=True, backends=_CENTRE_BACKENDS,
           reference="softmax regression on the embedding (e.g. Bishop 2006, sec. 4.3.4)"),
    Method("deep-svdd", "one-class compactness ||phi(x) - c||^2 to one fixed centre",
           head="one-class", soft_labels=False, bias=False, backends=("distance",),
           reference="Ruff et al., Deep SVDD, ICML 2018"),
    Method("autoencoder", "mean squared reconstruction error of stacked log-mel frames",
           head="reconstruction", soft_labels=False, backends=("reconstruction",),
           reference="Dohi et al., DCASE 2023 Task 2 baseline"),
)}

# Methods that learn the auxiliary task, i.e. accept the random-label modifier.
LABELLED = tuple(name for name, m in METHODS.items() if m.uses_labels)


def names() -> tuple[str, ...]:
    return tuple(METHODS)


def get(name: str) -> Method:
    """The :class:`Method` called ``name`` (without modifier); unknown names raise."""
    return lookup(METHODS, name, "method", hint=f" (or a labelled one + '{RANDOM_LABELS}')")


def parse(name: str) -> tuple[Method, bool]:
    """``name`` -> (its :class:`Method`, whether the labels are permuted at random)."""
    if not isinstance(name, str):
        raise ValueError(f"method must be a name, got {name!r}.")
    random_labels = name.endswith(RANDOM_LABELS)
    method = get(name.removesuffix(RANDOM_LABELS))
    if random_labels and not method.uses_labels:
        raise ValueError(f"{method.name} learns no labels, so '{RANDOM_LABELS}' does not apply"
                         f"; it applies to {', '.join(LABELLED)}.")
    return method, random_labels
