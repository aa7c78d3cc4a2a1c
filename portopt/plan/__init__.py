"""The deployment plan: when each project is proposed, and what the plan's rules allow.

The plan turns timing into a decision by giving the allocation model one column per
(project, proposal round): :mod:`portopt.plan.calendar` says which rounds the deadline allows and
when each round's money is committed and built; :mod:`portopt.plan.commitments` reads the
decisions already made; :mod:`portopt.plan.options` expands the catalog into those columns and
the engine's (project, construction start) columns; :mod:`portopt.plan.declines` draws Japan's
option to decline a proposal in the scenarios. The model's groups read the columns' rounds,
funding quarters and decline probabilities from :class:`~portopt.model.data.ModelData`, so the
one-shot selection is the special case of one column per project.
"""

from portopt.plan.calendar import Round, rounds
from portopt.plan.commitments import Commitment, load_commitments
from portopt.plan.declines import apply_declines, decline_probability, decline_uniforms
from portopt.plan.options import PlanOptions, plan_options

__all__ = [
    "Commitment",
    "PlanOptions",
    "Round",
    "apply_declines",
    "decline_probability",
    "decline_uniforms",
    "load_commitments",
    "plan_options",
    "rounds",
]
