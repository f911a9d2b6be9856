"""Hand joint sets (skeletons): names, kinematic parents, drawing colours, correspondences.

Four joint sets are defined, each once:

* ``hands2019_21`` (``HANDS2019_21``): the project's main skeleton and the ground truth of the
  synthetic generator. Order: ``wrist``, then for thumb, index, middle, ring, pinky in turn
  ``<finger>_mcp, <finger>_pip, <finger>_dip, <finger>_tip``. The thumb follows the
  Hands2019/BigHand "TMCP/TPIP/TDIP/TTIP" naming, i.e. anatomically thumb_mcp is the root of
  the thumb (carpometacarpal region), thumb_pip the thumb's metacarpophalangeal joint,
  thumb_dip its interphalangeal joint. NOTE: the Hands2019 annotation *files* store joints in
  BigHand order (wrist, 5 MCPs, then PIP/DIP/TIP per finger); ``vvhand_core.data.hands2019``
  reorders them into this skeleton's order.
* ``nyu_14`` (``NYU_14``): the 14 NYU evaluation joints, in the order of the community
  result files (NYU indices [0,3,6,9,12,15,18,21,24,25,27,30,31,32]): pinky tip/mid, ring
  tip/mid, middle tip/mid, index tip/mid, thumb tip/mid/root, two wrist points
  (``wrist_1``, ``wrist_2`` = NYU's PALM_1, PALM_2) and the palm centre (``palm``, root).
* ``icvl_16`` (``ICVL_16``): ``palm`` then root/mid/tip of thumb, index, middle, ring, pinky.
* ``msra_21`` (``MSRA_21``): the MSRA 2015 order (the data set's readme): ``wrist``, then
  mcp/pip/dip/tip of index, middle, ring, pinky (the readme's "little") and last the thumb.
  The same 21 anatomical joints as ``hands2019_21`` in another order (both label the thumb
  root as thumb_mcp: 4 thumb joints + wrist + 16 finger joints = 21).

Predictions are compared with labels of another joint set only through :func:`joint_map`
(built on :func:`correspondence`), never index by index.

Joint names are lowercase snake_case; they become ROS TF frames ``hand_<joint_name>``.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from types import MappingProxyType

FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")

# Hue per finger (HSV), palm/wrist/root joints are drawn in grey.
_FINGER_HUE = MappingProxyType(
    {"thumb": 0.0, "index": 0.14, "middle": 0.33, "ring": 0.55, "pinky": 0.78}
)
_GREY: tuple[float, float, float] = (0.6, 0.6, 0.6)


@dataclass(frozen=True)
class Skeleton:
    """A named joint set: ``joint_names[j]`` has kinematic parent ``parents[j]`` (-1 = root).

    ``colors[j]`` is the RGB drawing colour (components in 0..1) of joint j and of the bone
    ending at it.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    colors: tuple[tuple[float, float, float], ...]

    def __post_init__(self) -> None:
        """Check that names, parents and colours agree and form one tree."""
        j = len(self.joint_names)
        if len(self.parents) != j or len(self.colors) != j:
            raise ValueError(
                f"skeleton {self.name!r}: {j} names, {len(self.parents)} parents, "
                f"{len(self.colors)} colours"
            )
        if len(set(self.joint_names)) != j:
            raise ValueError(f"skeleton {self.name!r}: duplicate joint names")
        roots = [i for i, p in enumerate(self.parents) if p == -1]
        if len(roots) != 1:
            raise ValueError(f"skeleton {self.name!r}: needs exactly one root, got {roots}")
        for i, p in enumerate(self.parents):
            if p != -1 and not 0 <= p < j:
                raise ValueError(f"skeleton {self.name!r}: joint {i} has parent {p}")
        for i in range(j):  # every chain must reach the root without a cycle
            seen, k = 0, i
            while self.parents[k] != -1:
                k = self.parents[k]
                seen += 1
                if seen > j:
                    raise ValueError(f"skeleton {self.name!r}: cycle through joint {i}")

    @property
    def num_joints(self) -> int:
        """Number of joints J."""
        return len(self.joint_names)

    def bones(self) -> list[tuple[int, int]]:
        """(parent, child) index pairs, one per non-root joint, in joint order."""
        return [(p, c) for c, p in enumerate(self.parents) if p != -1]

    def index(self, joint_name: str) -> int:
        """Index of a joint by name (ValueError naming the skeleton when unknown)."""
        try:
            return self.joint_names.index(joint_name)
        except ValueError:
            raise ValueError(f"skeleton {self.name!r} has no joint {joint_name!r}") from None


def _finger_color(finger: str, k: int, n: int) -> tuple[float, float, float]:
    """Colour of the k-th of n joints along a finger: same hue, brighter towards the tip."""
    value = 0.55 + 0.45 * (k / max(n - 1, 1))
    r, g, b = colorsys.hsv_to_rgb(_FINGER_HUE[finger], 0.85, value)
    return (round(r, 4), round(g, 4), round(b, 4))


def _color_of(joint_name: str, chain: tuple[str, ...]) -> tuple[float, float, float]:
    finger, _, part = joint_name.partition("_")
    if finger not in _FINGER_HUE:
        return _GREY
    return _finger_color(finger, chain.index(part), len(chain))


def _finger_chains(name: str, root: str, parts: tuple[str, ...]) -> Skeleton:
    """A root joint, then ``<finger>_<part>`` for each finger, each chain hanging off the root."""
    names = [root]
    parents = [-1]
    for finger in FINGERS:
        for k, part in enumerate(parts):
            names.append(f"{finger}_{part}")
            parents.append(0 if k == 0 else len(names) - 2)
    colors = tuple(_color_of(n, parts) for n in names)
    return Skeleton(name, tuple(names), tuple(parents), colors)


def _build_hands2019() -> Skeleton:
    return _finger_chains("hands2019_21", "wrist", ("mcp", "pip", "dip", "tip"))


def _build_nyu() -> Skeleton:
    names = (
        "pinky_tip", "pinky_mid", "ring_tip", "ring_mid", "middle_tip", "middle_mid",
        "index_tip", "index_mid", "thumb_tip", "thumb_mid", "thumb_root",
        "wrist_1", "wrist_2", "palm",
    )  # fmt: skip
    palm = 13
    parents = (1, palm, 3, palm, 5, palm, 7, palm, 9, 10, palm, palm, palm, -1)
    colors = []
    for n in names:
        chain = ("root", "mid", "tip") if n.startswith("thumb") else ("mid", "tip")
        colors.append(_color_of(n, chain))
    return Skeleton("nyu_14", names, parents, tuple(colors))


def _build_icvl() -> Skeleton:
    return _finger_chains("icvl_16", "palm", ("root", "mid", "tip"))


def _build_msra() -> Skeleton:
    parts = ("mcp", "pip", "dip", "tip")
    names, parents = ["wrist"], [-1]
    for finger in ("index", "middle", "ring", "pinky", "thumb"):
        for k, part in enumerate(parts):
            names.append(f"{finger}_{part}")
            parents.append(0 if k == 0 else len(names) - 2)
    colors = tuple(_color_of(n, parts) for n in names)
    return Skeleton("msra_21", tuple(names), tuple(parents), colors)


HANDS2019_21: Skeleton = _build_hands2019()
NYU_14: Skeleton = _build_nyu()
ICVL_16: Skeleton = _build_icvl()
MSRA_21: Skeleton = _build_msra()

_SKELETONS = MappingProxyType({s.name: s for s in (HANDS2019_21, NYU_14, ICVL_16, MSRA_21)})


def get_skeleton(name: str) -> Skeleton:
    """The skeleton called ``name`` ("hands2019_21", "nyu_14", "icvl_16", "msra_21")."""
    try:
        return _SKELETONS[name]
    except KeyError:
        known = ", ".join(sorted(_SKELETONS))
        raise ValueError(f"unknown skeleton {name!r}; known skeletons: {known}") from None


def skeleton_from_entry(entry: object) -> Skeleton:
    """The registered skeleton a saved model's ``{"name", "joint_names"}`` entry names.

    ValueError (one line) when the entry has no name, names no registered skeleton, or
    lists the joints in another order than the registered one.
    """
    if not isinstance(entry, dict) or "name" not in entry:
        raise ValueError("skeleton entry has no name")
    skeleton = get_skeleton(entry["name"])
    if list(entry.get("joint_names", [])) != list(skeleton.joint_names):
        raise ValueError(f"skeleton {skeleton.name!r}: the joint order differs from the "
                         "registered skeleton of that name")
    return skeleton

# Anatomical meaning of each joint, expressed in hands2019_21 joint names. Only joints whose
# meaning is unambiguous across annotation conventions are listed; the others (palm centres,
# NYU's wrist-side points, ICVL's thumb root) have no counterpart and are never paired.
# NYU "mid" is F*_KNU2_B, the proximal end of the middle phalanx = PIP; NYU thumb mid/root are
# the thumb's interphalangeal and metacarpophalangeal joints (hands2019 thumb_dip/thumb_pip).
# ICVL "root"/"mid" of the four fingers are the MCP/PIP joints; ICVL thumb mid is the
# thumb's interphalangeal joint. MSRA's names are hands2019_21's (see the module docstring).
_ANATOMY = MappingProxyType(
    {
        "hands2019_21": MappingProxyType({n: n for n in HANDS2019_21.joint_names}),
        "msra_21": MappingProxyType({n: n for n in MSRA_21.joint_names}),
        "nyu_14": MappingProxyType(
            {
                **{f"{f}_tip": f"{f}_tip" for f in FINGERS},
                **{f"{f}_mid": f"{f}_pip" for f in FINGERS if f != "thumb"},
                "thumb_mid": "thumb_dip",
                "thumb_root": "thumb_pip",
            }
        ),
        "icvl_16": MappingProxyType(
            {
                **{f"{f}_tip": f"{f}_tip" for f in FINGERS},
                **{f"{f}_mid": f"{f}_pip" for f in FINGERS if f != "thumb"},
                **{f"{f}_root": f"{f}_mcp" for f in FINGERS if f != "thumb"},
                "thumb_mid": "thumb_dip",
            }
        ),
    }
)


def anatomical_name(skeleton: Skeleton, joint: int) -> str | None:
    """The hands2019_21 name of the anatomical joint that ``skeleton``'s joint denotes, if any."""
    table = _ANATOMY.get(skeleton.name)
    if table is None:
        raise ValueError(f"no anatomical table for skeleton {skeleton.name!r}")
    return table.get(skeleton.joint_names[joint])


def correspondence(src: Skeleton, dst: Skeleton) -> list[tuple[int, int]]:
    """(src_index, dst_index) pairs of joints that denote the same anatomical joint.

    Sorted by source index. For ``src == dst`` this is the identity over all joints.
    """
    if src.name == dst.name:
        return [(i, i) for i in range(src.num_joints)]
    dst_by_anatomy = {}
    for j in range(dst.num_joints):
        a = anatomical_name(dst, j)
        if a is not None:
            dst_by_anatomy[a] = j
    pairs = []
    for i in range(src.num_joints):
        a = anatomical_name(src, i)
        if a is not None and a in dst_by_anatomy:
            pairs.append((i, dst_by_anatomy[a]))
    return pairs


JOINT_SETS = ("all", "common")


class SkeletonMismatch(ValueError):
    """Predictions of one skeleton cannot be scored against labels of another as asked."""


@dataclass(frozen=True)
class JointMap:
    """Which predicted joint stands for which labelled joint, in label (``dst``) order.

    ``src_index[k]`` (a joint of ``src``, the model's skeleton) and ``dst_index[k]`` (a joint
    of ``dst``, the labels' skeleton) denote the same anatomical joint; ``dst_index`` is
    increasing. ``complete``: every ``dst`` joint has a counterpart.
    """

    src: Skeleton
    dst: Skeleton
    src_index: tuple[int, ...]
    dst_index: tuple[int, ...]

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The ``dst`` names of the mapped joints, in order."""
        return tuple(self.dst.joint_names[j] for j in self.dst_index)

    @property
    def complete(self) -> bool:
        """Whether all of ``dst``'s joints are mapped."""
        return len(self.dst_index) == self.dst.num_joints

    def predicted(self, joints):
        """Predictions (..., J_src, 3) -> the mapped joints (..., K, 3) in label order."""
        return joints[..., list(self.src_index), :]

    def labelled(self, joints):
        """Labels (..., J_dst, 3) -> the mapped joints (..., K, 3)."""
        return joints[..., list(self.dst_index), :]


def joint_map(src: Skeleton, dst: Skeleton, joints: str = "all") -> JointMap:
    """The :class:`JointMap` from ``src`` predictions to ``dst`` labels.

    joints: "all" (every ``dst`` joint must have a counterpart in ``src``, as the community
    metrics of a data set need) or "common" (the joints both denote). Raises
    :class:`SkeletonMismatch` naming the ``dst`` joints without a counterpart ("all") or
    when the skeletons share no joint; ValueError for an unknown ``joints``.
    """
    if joints not in JOINT_SETS:
        raise ValueError(f"joints must be one of {JOINT_SETS}, got {joints!r}")
    pairs = sorted(correspondence(src, dst), key=lambda p: p[1])
    if not pairs:
        raise SkeletonMismatch(f"skeletons {src.name!r} and {dst.name!r} share no joint")
    mapped = JointMap(src, dst, tuple(a for a, _ in pairs), tuple(b for _, b in pairs))
    if joints == "all" and not mapped.complete:
        missing = [n for j, n in enumerate(dst.joint_names) if j not in mapped.dst_index]
        raise SkeletonMismatch(
            f"the model's skeleton {src.name!r} has no joint for {len(missing)} of the "
            f"{dst.num_joints} {dst.name!r} joints ({', '.join(missing)}): the data set's "
            f"metrics need all of them. Score the {len(pairs)} shared joints instead "
            "(joints='common'; not comparable with published tables) or use a model "
            f"trained on {dst.name!r}")
    return mapped
