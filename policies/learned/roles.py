"""The one table of learned roles: their names, what they optimise, how they act.

Two schemes share the table:

- ``span`` (the shipped default): ONE any-N ``span-attn`` network per scenario family
  (:mod:`policies.learned.span`, checkpoint ``<family>-span-attn.pt``), label-free per-drop
  training (:mod:`policies.learned.span_training`). ``student`` is its beams at an operating point
  ``rho`` (0.5, cvx's), ``sinr-teacher`` its max-min SINR reference beams at the full budget
  (``rho = 1``).
- ``paper`` (the seed's published scheme, eqs. 10-12, one network per ``(family, N)``,
  :mod:`policies.learned.training`): checkpoints ``<family>-N<users>-<arch>-<role>.pt``. Its roles
  keep their names in training (``--role student``) and are scored as ``paper-<role>``; the
  seed's sensitivity baselines ``fixed-beta`` and ``fixed-lambda`` exist only in it.

| policy name        | scheme | trained role | objective                                  |
|--------------------|--------|--------------|--------------------------------------------|
| student            | span   | span         | per-drop max SSNR keeping rho's reference  |
| sinr-teacher       | span   | span         | its reference beams at rho = 1             |
| paper-sinr-teacher | paper  | sinr-teacher | eq. 10, beta = 1                           |
| paper-student      | paper  | student      | eq. 11, lambda by eq. 12                   |
| ssnr-teacher       | paper  | ssnr-teacher | eq. 10, beta = 0 (the seed's)              |
| fixed-beta         | paper  | fixed-beta   | eq. 10, fixed beta                         |
| fixed-lambda       | paper  | fixed-lambda | eq. 11, fixed lambda                       |
"""

from __future__ import annotations

from dataclasses import dataclass

#: The seed scheme's training roles, in training order (teachers first).
PAPER_ROLES = ("ssnr-teacher", "sinr-teacher", "student", "fixed-beta", "fixed-lambda")


@dataclass(frozen=True)
class Role:
    """One learned policy name: its ``scheme`` (``"span"`` or ``"paper"``), the checkpoint role
    it loads (``trained``) and, for ``span``, the operating point it acts at (``rho``; None =
    the policy's ``rho`` option) and whether it acts with the reference beams."""

    name: str
    scheme: str
    trained: str
    rho: float | None = None
    reference: bool = False
    doc: str = ""


ROLES: dict[str, Role] = {r.name: r for r in (
    Role("student", "span", "span", None, False,
         "any-N span-attn network at operating point rho (default 0.5)"),
    Role("sinr-teacher", "span", "span", 1.0, True,
         "the span-attn network's max-min SINR reference beams at the full budget"),
    Role("ssnr-teacher", "paper", "ssnr-teacher", doc="the seed's SSNR teacher (eq. 10, beta 0)"),
    Role("paper-sinr-teacher", "paper", "sinr-teacher", doc="the seed's SINR teacher"),
    Role("paper-student", "paper", "student", doc="the seed's student (eqs. 11-12)"),
    Role("fixed-beta", "paper", "fixed-beta", doc="the seed's fixed-beta baseline (eq. 10)"),
    Role("fixed-lambda", "paper", "fixed-lambda", doc="the seed's fixed-lambda baseline (eq. 11)"),
)}


def role(name: str) -> Role:
    """The :class:`Role` called ``name``, else a ``ValueError`` listing them."""
    if name not in ROLES:
        raise ValueError(f"unknown learned role {name!r}; roles: {', '.join(ROLES)}")
    return ROLES[name]
