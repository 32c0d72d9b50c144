"""How well discrete units capture phones: phone purity, cluster purity and PNMI, as the HuBERT paper defines
them (Hsu et al. 2021, section IV.D), from frame-level phone labels and units.

With the joint distribution p(y, z) of phone y and unit z over all labelled frames:
- phone purity   = sum_z p(z) max_y p(y | z): how well the phone is predicted from the unit;
- cluster purity = sum_y p(y) max_z p(z | y): how well the unit is predicted from the phone;
- PNMI           = I(y; z) / H(y): the share of the phone's uncertainty that the unit removes.
`phone_frames` turns timed phone segments into one label per unit frame (the phone covering the frame's
centre; frames no segment covers are left out with label None).
"""

from __future__ import annotations

import numpy as np


def phone_frames(segments, frame_rate: float, num_frames: int) -> list[str | None]:
    """One label per frame from `(phone, start_s, end_s)` segments: the phone whose span holds the frame centre."""
    centres = (np.arange(num_frames) + 0.5) / frame_rate
    labels: list[str | None] = [None] * num_frames
    for phone, start, end in segments:
        for index in np.flatnonzero((centres >= start) & (centres < end)):
            labels[index] = phone
    return labels


def unit_quality(labels: list, units) -> dict:
    """Phone purity, cluster purity and PNMI of `units` against `labels` (same length; None labels are left
    out), with the frame, phone and unit counts they rest on."""
    units = np.asarray(units).reshape(-1)
    if len(labels) != len(units):
        raise ValueError(f"{len(labels)} phone labels but {len(units)} units: they must pair up frame by frame.")
    keep = np.array([label is not None for label in labels], dtype=bool)
    if not keep.any():
        raise ValueError("No frame has a phone label: nothing to score.")
    phones, phone_ids = np.unique(np.asarray(labels, dtype=object)[keep].astype(str), return_inverse=True)
    clusters, unit_ids = np.unique(units[keep], return_inverse=True)
    joint = np.zeros((len(phones), len(clusters)))
    np.add.at(joint, (phone_ids, unit_ids), 1.0)
    joint /= joint.sum()
    p_phone, p_unit = joint.sum(1), joint.sum(0)
    nonzero = joint > 0
    mutual = float((joint[nonzero] * np.log(joint[nonzero] / np.outer(p_phone, p_unit)[nonzero])).sum())
    entropy = float(-(p_phone * np.log(p_phone)).sum())
    return {"phone_purity": float(joint.max(0).sum()), "cluster_purity": float(joint.max(1).sum()),
            "pnmi": mutual / entropy if entropy > 0 else float("nan"),
            "frames": int(keep.sum()), "phones": len(phones), "units": len(clusters)}
