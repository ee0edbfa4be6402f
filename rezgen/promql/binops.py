"""Binary operators: arithmetic, comparisons (filtering or `bool`) and set operators, with Prometheus vector
matching (`on` / `ignoring`, `group_left` / `group_right`) decided step by step.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import promql_parser as pp

from rezgen.promql.values import NAME, PromQLError, Sample, Scalar, Vector, drop_name, label_value, with_label
from rezgen.store.model import Labels

ARITHMETIC = ("+", "-", "*", "/", "%", "^", "atan2")
COMPARISON = ("==", "!=", ">", "<", ">=", "<=")
SET = ("and", "or", "unless")


def apply(op: str, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        if op == "+":
            return lhs + rhs
        if op == "-":
            return lhs - rhs
        if op == "*":
            return lhs * rhs
        if op == "/":
            return np.true_divide(lhs, rhs)
        if op == "%":
            return np.fmod(lhs, rhs)
        if op == "^":
            return np.power(lhs, rhs)
        if op == "atan2":
            return np.arctan2(lhs, rhs)
        if op == "==":
            return lhs == rhs
        if op == "!=":
            return lhs != rhs
        if op == ">":
            return lhs > rhs
        if op == "<":
            return lhs < rhs
        if op == ">=":
            return lhs >= rhs
        if op == "<=":
            return lhs <= rhs
    raise PromQLError(f"operator {op!r} is not supported")


def scalar_scalar(op: str, lhs: Scalar, rhs: Scalar, return_bool: bool) -> Scalar:
    if op in COMPARISON and not return_bool:
        raise PromQLError("comparisons between scalars must use the bool modifier")
    return Scalar(apply(op, lhs.values, rhs.values).astype(np.float64))


def vector_scalar(op: str, vector: Vector, scalar: Scalar, scalar_left: bool, return_bool: bool) -> Vector:
    if op in SET:
        raise PromQLError(f"set operator {op!r} not allowed between a vector and a scalar")
    out = Vector()
    for sample in vector.series:
        if sample.is_histogram:
            out.series.append(_histogram_scalar(op, sample, scalar, scalar_left))
            continue
        lhs, rhs = (scalar.values, sample.values) if scalar_left else (sample.values, scalar.values)
        result = apply(op, lhs, rhs)
        out.series.extend(_emit(op, sample.labels, sample.values, result, sample.present, return_bool))
    return out


def _histogram_scalar(op: str, sample: Sample, scalar: Scalar, scalar_left: bool) -> Sample:
    if op == "*" or (op == "/" and not scalar_left):
        values = apply(op, sample.values, scalar.values[:, None])
        return Sample(drop_name(sample.labels), values, sample.present, sample.layout)
    raise PromQLError(f"operator {op!r} is not defined between a histogram and a scalar")


def _emit(op: str, labels: Labels, kept: np.ndarray, result: np.ndarray, present: np.ndarray,
          return_bool: bool) -> list[Sample]:
    """Arithmetic keeps the result; a comparison filters (keeping `kept`) or, with bool, yields 0/1."""
    if op in ARITHMETIC:
        return [Sample(drop_name(labels), result.astype(np.float64), present.copy())]
    if return_bool:
        return [Sample(drop_name(labels), result.astype(np.float64), present.copy())]
    keep = present & result.astype(bool)
    return [Sample(labels, kept, keep)] if keep.any() else []


def _signature(labels: Labels, modifier: pp.BinModifier | None) -> Labels:
    matching = modifier.matching if modifier is not None else None
    if matching is not None and matching.type == pp.LabelModifierType.Include:
        names = set(matching.labels)
        return tuple(pair for pair in labels if pair[0] in names)
    ignored = set(matching.labels) if matching is not None else set()
    return tuple(pair for pair in labels if pair[0] != NAME and pair[0] not in ignored)


def vector_vector(op: str, lhs: Vector, rhs: Vector, modifier: pp.BinModifier | None, steps: int) -> Vector:
    if op in SET:
        return _set_operation(op, lhs, rhs, modifier, steps)
    if any(s.is_histogram for s in lhs.series + rhs.series):
        raise PromQLError(f"operator {op!r} between histograms is not supported; aggregate them first")
    card = modifier.card if modifier is not None else pp.VectorMatchCardinality.OneToOne
    return_bool = bool(modifier and modifier.return_bool)
    one_to_many = card == pp.VectorMatchCardinality.OneToMany
    many, one = (rhs, lhs) if one_to_many else (lhs, rhs)
    one_side = _index(one, modifier, steps)
    include = list(modifier.group_labels or []) if modifier is not None else []
    out: dict[Labels, Sample] = {}
    matched: dict[Labels, np.ndarray] = {}
    for sample in many.series:
        signature = _signature(sample.labels, modifier)
        match = one_side.get(signature)
        if match is None:
            continue
        partner_values, partner_labels, partner_present = match
        present = sample.present & partner_present
        if not present.any():
            continue
        if card == pp.VectorMatchCardinality.OneToOne:
            taken = matched.setdefault(signature, np.zeros(steps, dtype=bool))
            if (taken & present).any():
                raise PromQLError("multiple matches for labels: many-to-one matching must be explicit "
                                  "(group_left/group_right)")
            taken |= present
        left, right = (partner_values, sample.values) if one_to_many else (sample.values, partner_values)
        result = apply(op, left, right)
        first = int(np.argmax(present))
        labels = _result_labels(sample.labels, partner_labels[first], op, modifier, card, include, return_bool)
        for emitted in _emit(op, labels, left, result, present, return_bool):
            _merge(out, emitted, card)
    return Vector(list(out.values()))


def _index(vector: Vector, modifier: pp.BinModifier | None, steps: int
           ) -> dict[Labels, tuple[np.ndarray, list[Labels], np.ndarray]]:
    """Series of the matching side by signature, combined per step; two at one step is an error."""
    groups: dict[Labels, list[Sample]] = defaultdict(list)
    for sample in vector.series:
        groups[_signature(sample.labels, modifier)].append(sample)
    index: dict[Labels, tuple[np.ndarray, list[Labels], np.ndarray]] = {}
    for signature, members in groups.items():
        present = np.stack([m.present for m in members])
        if (present.sum(axis=0) > 1).any():
            raise PromQLError("found duplicate series for a match group on the 'one' side of the operation: "
                              "many-to-many matching not allowed: matching labels must be unique on one side")
        values = np.zeros(steps)
        for m in members:
            values[m.present] = m.values[m.present]
        which = np.argmax(present, axis=0)
        labels = [members[i].labels for i in which]
        index[signature] = (values, labels, np.any(present, axis=0))
    return index


def _result_labels(labels: Labels, partner: Labels, op: str, modifier: pp.BinModifier | None,
                   card: pp.VectorMatchCardinality, include: list[str], return_bool: bool) -> Labels:
    result = drop_name(labels) if (op in ARITHMETIC or return_bool) else labels
    matching = modifier.matching if modifier is not None else None
    if card == pp.VectorMatchCardinality.OneToOne and matching is not None:
        names = set(matching.labels)
        if matching.type == pp.LabelModifierType.Include:
            result = tuple(pair for pair in result if pair[0] in names)
        else:
            result = tuple(pair for pair in result if pair[0] not in names)
    if include:
        # group_x(labels) copies those labels from the "one" side.
        for name in include:
            result = with_label(result, name, label_value(partner, name))
    return result


def _merge(out: dict[Labels, Sample], sample: Sample, card: pp.VectorMatchCardinality) -> None:
    existing = out.get(sample.labels)
    if existing is None:
        out[sample.labels] = sample
        return
    if (existing.present & sample.present).any():
        raise PromQLError("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                          if card == pp.VectorMatchCardinality.OneToOne
                          else "multiple matches for labels: grouping labels must ensure unique matches")
    existing.values = np.where(sample.present, sample.values, existing.values)
    existing.present = existing.present | sample.present


def _set_operation(op: str, lhs: Vector, rhs: Vector, modifier: pp.BinModifier | None, steps: int) -> Vector:
    rhs_present: dict[Labels, np.ndarray] = defaultdict(lambda: np.zeros(steps, dtype=bool))
    for sample in rhs.series:
        rhs_present[_signature(sample.labels, modifier)] |= sample.present
    out = Vector()
    if op in ("and", "unless"):
        for sample in lhs.series:
            other = rhs_present.get(_signature(sample.labels, modifier), np.zeros(steps, dtype=bool))
            keep = sample.present & (other if op == "and" else ~other)
            if keep.any():
                out.series.append(Sample(sample.labels, sample.values, keep, sample.layout))
        return out
    lhs_present: dict[Labels, np.ndarray] = defaultdict(lambda: np.zeros(steps, dtype=bool))
    for sample in lhs.series:
        lhs_present[_signature(sample.labels, modifier)] |= sample.present
        out.series.append(sample)
    for sample in rhs.series:
        keep = sample.present & ~lhs_present.get(_signature(sample.labels, modifier), np.zeros(steps, dtype=bool))
        if keep.any():
            out.series.append(Sample(sample.labels, sample.values, keep, sample.layout))
    return out
