"""Declines reach dependants (issue 23): a project whose prerequisite is declined in a scenario
is not built there, so it draws nothing, earns nothing and covers nothing; in the default plan,
at optimisation and at evaluation alike."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from _runs import default_run

from portopt.catalog import load_catalog
from portopt.config import load_config
from portopt.engine.philox import key_of_seed
from portopt.plan import load_commitments, plan_options
from portopt.plan.columns import Columns
from portopt.plan.declines import declined
from portopt.planning import plan_config, run_plan
from tests.conftest import build_small_catalog, write_catalog_csv

N = 4000


def _frame(first: int = 0, n: int = N) -> SimpleNamespace:
    return SimpleNamespace(first=first, n=n)


def test_a_chain_of_prerequisites_carries_the_decline() -> None:
    """c needs b needs a: a's declines reach b and c; d, on its own, keeps its own."""
    key = key_of_seed(7)
    projects = ["a", "b", "c", "d"]
    p = np.array([0.3, 0.0, 0.1, 0.2])
    own = declined(_frame(), projects, p, key)
    mask = declined(_frame(), projects, p, key, {"b": ("a",), "c": ("b",), "d": ()})
    assert own[:, 0].mean() > 0.25 and not own[:, 1].any()
    np.testing.assert_array_equal(mask[:, 1], own[:, 0])
    np.testing.assert_array_equal(mask[:, 2], own[:, 0] | own[:, 2])
    np.testing.assert_array_equal(mask[:, 3], own[:, 3])
    np.testing.assert_array_equal(mask[:, 0], own[:, 0])


def _default_options():
    config = plan_config(load_config(Path(__file__).parents[2] / "configs" / "default.yaml"))
    catalog = load_catalog(config.catalog)
    commitments = load_commitments(config.plan.commitments, catalog, config)
    return config, catalog, Columns.of_plan(catalog, plan_options(catalog, config, commitments))


def test_in_the_default_plan_no_project_is_funded_where_its_prerequisite_is_declined() -> None:
    """Every column of the default plan's model (all start options) and of its evaluation (one
    row per project): wherever a prerequisite's proposal is declined, the dependant is not
    funded. toshiba_grid_tranche_3 needs tranche 2 (issue 23's example)."""
    config, _catalog, columns = _default_options()
    cat = columns.catalog
    needs = columns.needs
    assert needs["toshiba_grid_tranche_3"] == ("toshiba_grid_tranche_2",)
    p = np.full(len(cat.projects), 0.25)
    p[(cat.projects["status"] == "committed").to_numpy()] = 0.0
    base = [str(b) for b in cat.projects["project"]]
    key = key_of_seed(config.seed)
    frames = {"optimisation": _frame(0), "evaluation": _frame(2000)}
    for stage, frame in frames.items():
        mask = declined(frame, base, p, key, needs)
        own = declined(frame, base, p, key)
        for j, b in enumerate(base):
            for pre in needs.get(b, ()):
                pre_cols = [k for k, x in enumerate(base) if x == pre]
                pre_declined = own[:, pre_cols].all(axis=1)
                assert mask[pre_declined, j].all(), (stage, b, pre)
        t3 = base.index("toshiba_grid_tranche_3")
        t2 = base.index("toshiba_grid_tranche_2")
        assert (mask[:, t3] & ~own[:, t3]).any()  # declined only through tranche 2
        assert not (own[:, t2] & ~mask[:, t3]).any()
    # the evaluation catalog has one row per project and no depends_on of its own (the engine
    # rows drop it): the plan passes the model catalog's prerequisites, as run_plan does
    cols = columns.evaluation_columns(np.zeros(len(base)))
    eval_catalog = columns.evaluation_catalog(cols)
    assert not any(len(d) for d in eval_catalog.projects["depends_on"])
    frame = _frame(2000)
    eval_base = [str(b) for b in eval_catalog.projects["project"]]
    mask = declined(frame, eval_base, p[cols], key, needs)
    ids = list(eval_catalog.project_ids)
    own = declined(frame, eval_base, p[cols], key)
    np.testing.assert_array_equal(own, declined(frame, eval_base, p[cols], key, {}))
    t2, t3 = ids.index("toshiba_grid_tranche_2"), ids.index("toshiba_grid_tranche_3")
    assert mask[own[:, t2], t3].all()
    assert (mask[:, t3] & ~own[:, t3]).any()


def test_the_default_plans_dependants_are_not_funded_where_their_chosen_prerequisite_is_declined(
    default_run,
) -> None:
    """The plan itself: in the optimisation scenarios the default plan was chosen on (declines
    applied, the plan's own decline probabilities), no chosen column is funded in a scenario
    where the chosen column of a project it needs is declined, although the prerequisite's
    start options have different probabilities (their largest counts)."""
    _config, _catalog, columns = _default_options()
    scenarios = default_run.scenarios
    assert list(scenarios.project_ids) == list(columns.catalog.project_ids)
    mask = scenarios.declined_mask()
    pr = columns.catalog.projects
    pairs_of = zip(pr["project"].astype(str), pr["proposal_quarter"].astype(str), strict=True)
    key = {pq: j for j, pq in enumerate(pairs_of)}
    plan = default_run.plan
    chosen = {
        str(r.project_id): key[(str(r.project_id), str(r.proposal_quarter))]
        for r in plan.itertuples()
    }
    pairs = 0
    for b, i in chosen.items():
        for pre in columns.needs.get(b, ()):
            if pre in chosen:
                k = chosen[pre]
                assert mask[:, k].any(), pre
                funded_anyway = mask[:, k] & ~mask[:, i]
                assert not funded_anyway.any(), (b, pre, int(funded_anyway.sum()))
                pairs += 1
    assert pairs >= 5  # tranches and AP1000 pairs that need an earlier one
    # a declined column draws and covers nothing there
    assert (scenarios.project["pv_draw"][mask] == 0.0).all()
    assert (scenarios.project["online_share"][mask] == 0.0).all()


def test_the_unfunded_probability_is_the_share_of_scenarios_not_funded() -> None:
    """The plan's expected committed capital counts (1 - q) of a column, q its probability of
    not being funded, own decline or a prerequisite's: the share of scenarios the draws give."""
    from portopt.plan.declines import unfunded_probability

    projects = ["a", "a", "b", "c", "d"]
    p = np.array([0.3, 0.2, 0.1, 0.15, 0.05])
    needs = {"b": ("a",), "c": ("b", "a"), "d": ()}
    q = unfunded_probability(projects, p, needs)
    np.testing.assert_allclose(q[[0, 1, 4]], p[[0, 1, 4]])
    # a prerequisite with two columns counts at the larger probability (a's 0.3)
    assert q[2] == pytest.approx(1 - 0.9 * 0.7, abs=1e-15)
    assert q[3] == pytest.approx(1 - 0.85 * 0.9 * 0.7, abs=1e-15)
    mask = declined(_frame(0, 200_000), projects, p, key_of_seed(11), needs)
    np.testing.assert_allclose(mask.mean(axis=0)[2:], q[2:], atol=0.004)


def test_the_plans_columns_apply_the_prerequisites_at_evaluation_and_in_expected_capital():
    """Through the pipeline's own calls (portopt.pipeline): the evaluation set, one column
    per project without depends_on, is masked with the model's prerequisites, and the model
    counts a dependant's expected committed capital at its probability of being funded."""
    from portopt.engine.generate import generate_scenarios

    config, _catalog, columns = _default_options()
    base = [str(b) for b in columns.project]
    p = np.full(len(base), 0.25)
    p[(columns.catalog.projects["status"] == "committed").to_numpy()] = 0.0
    columns = columns.with_decline_probability(p)
    pr = columns.catalog.projects
    t3 = base.index("toshiba_grid_tranche_3")
    assert pr["unfunded_prob"].iloc[t3] > pr["decline_prob"].iloc[t3]
    assert (pr["unfunded_prob"] >= pr["decline_prob"]).all()
    cols = columns.evaluation_columns(np.ones(len(base)))
    eval_catalog = columns.evaluation_catalog(cols)
    block = generate_scenarios(eval_catalog, config, "numpy", range(2000, 2400))
    masked, mask = columns.declines(block, columns.decline_prob[cols], config)
    ids = list(eval_catalog.project_ids)
    key = key_of_seed(config.seed)
    own = declined(_frame(2000, 400), ids, columns.decline_prob[cols], key)
    i2, i3 = ids.index("toshiba_grid_tranche_2"), ids.index("toshiba_grid_tranche_3")
    assert own[:, i2].any() and mask[own[:, i2], i3].all()
    assert (masked.project["pv_draw"][mask[:, i3], i3] == 0.0).all()


def _capital_rules(plan, projects, config) -> dict[str, tuple[float, float, str]]:
    """Each capital rule's left side and bound, computed from plan.csv alone (fund money,
    unfunded probability, round, construction start) and the catalog's sponsor and Japanese
    content, on the basis docs/scenario-model.md states: expected committed money
    ``fund_usd * (1 - decline_prob)``. rule -> (value, bound, "<=" or ">=")."""
    g = config.model.groups
    f = plan["fund_usd"].to_numpy(float)
    e = f * (1.0 - plan["decline_prob"].to_numpy(float))
    total = e.sum()
    out = {"budget": (total, config.model.budget_usd, "<=")}
    sector = plan["sector"].to_numpy()
    for s, (lo, hi) in g.sector_shares.bounds.items():
        share = e[sector == s].sum() / total
        out[f"sector {s} max"] = (share, hi, "<=")
        out[f"sector {s} min"] = (share, lo, ">=")
    content = projects.loc[plan["project_id"], "japan_content"].to_numpy(float)
    out["japan content"] = (float(content @ e) / total, g.japan_content.floor, ">=")
    sponsor = projects.loc[plan["project_id"], "sponsor"].to_numpy()
    for name in sorted(set(sponsor)):
        out[f"sponsor {name}"] = (e[sponsor == name].sum(), g.sponsor_cap.max_usd, "<=")
    if g.capital.annual_commitment_cap_usd is not None:
        year = np.minimum(plan["funding_quarter"].str[:4].astype(int).to_numpy(), 2028)
        for t in sorted(set(year.tolist())):
            out[f"year {t}"] = (e[year == t].sum(), g.capital.annual_commitment_cap_usd, "<=")
    fiscal: dict[int, float] = {}
    for start, build, x in zip(plan["construction_start"], plan["build_quarters"], e, strict=True):
        y, q = int(start[:4]), int(start[-1])
        for _ in range(int(build)):  # Japan's fiscal year t runs April t to March t + 1
            t = y if q >= 2 else y - 1
            fiscal[t] = fiscal.get(t, 0.0) + x / int(build)
            y, q = (y + 1, 1) if q == 4 else (y, q + 1)
    for t, x in fiscal.items():
        out[f"FY{t}"] = (x, g.jbic_capacity.per_fiscal_year_usd, "<=")
    return out


def _broken(rules: dict[str, tuple[float, float, str]]) -> list[str]:
    # plan.csv rounds fund money to cents and the probability to 6 decimals
    return [
        f"{rule}: {value:.6g} {sense} {bound:.6g} fails"
        for rule, (value, bound, sense) in rules.items()
        if (value > bound * (1 + 1e-5) + 1e-5 if sense == "<=" else value < bound - 1e-5)
    ]


def test_the_default_plans_capital_rules_hold_on_their_stated_basis(default_run) -> None:
    """docs/scenario-model.md, "The basis of the capital rules": every capital rule (budget,
    target, sector shares, Japanese content, sponsor cap, annual cap, JBIC's capacity) holds on
    expected committed money, each proposal counted at its probability of being funded (its
    own decline or a prerequisite's), computed here from plan.csv and the catalog alone."""
    config = load_config(Path(__file__).parents[2] / "configs" / "default.yaml")
    plan = pd.read_csv(default_run.out_dir / "plan.csv")
    expected = plan["fund_usd"] * (1.0 - plan["decline_prob"])
    # plan.csv's probability is rounded to 6 decimals
    np.testing.assert_allclose(plan["expected_committed_usd"], expected, rtol=2e-6)
    summary = default_run.metrics["plan"]
    total = plan["expected_committed_usd"].sum()
    assert summary["committed_expected_usd"] == pytest.approx(total, rel=1e-9)
    t3 = plan[plan["project_id"] == "toshiba_grid_tranche_3"]
    t2 = plan[plan["project_id"] == "toshiba_grid_tranche_2"]
    if len(t3) and len(t2):  # a dependant is funded at most as often as its prerequisite
        assert float(t3["decline_prob"].iloc[0]) >= float(t2["decline_prob"].iloc[0])
    projects = load_catalog(config.catalog).projects
    rules = _capital_rules(plan, projects, config)
    assert not _broken(rules)
    # metrics.json's sector shares are on the same basis
    for s, got in default_run.metrics["sector_shares"].items():
        share = expected[plan["sector"] == s].sum() / expected.sum()
        assert got["share"] == pytest.approx(share, abs=1e-5), s


def test_a_small_plans_capital_rules_hold_on_expected_committed_money(tmp_path: Path) -> None:
    """Every capital rule set tight on a small catalog whose proposals Japan declines about
    half the time: each holds on expected committed money, and the sponsor cap and the annual
    cap, binding there, would be broken on proposed money (so the basis is the one stated)."""
    cat = build_small_catalog()
    projects = cat.projects.copy()
    projects["status"] = "candidate"
    projects["japan_content"] = [0.1, 0.6, 0.2, 0.5, 0.1, 0.4]
    projects.loc[["gas_ohio", "ap1000_pair"], "sponsor"] = "one_sponsor"
    folder = write_catalog_csv(
        type(cat)(projects, cat.chokepoints, cat.capacity, cat.source), tmp_path / "catalog"
    )
    sets = [
        f"catalog={folder}",
        f"output.dir={tmp_path / 'out'}",
        "scenarios.optimisation=60",
        "scenarios.evaluation=40",
        "plan.first_quarter=2027Q1",
        "plan.deadline=2028-12-31",
        "plan.frontier.enabled=false",
        "plan.decline.midpoint_recovery=5.0",  # p near max_prob for every proposal
        "plan.decline.scale=1.0",
        "model.budget_usd=3e10",
        "plan.target_usd=3e10",
        "model.groups.review_capacity.per_quarter=2",
        "model.groups.recoupment.min_expected_recovery=0.3",
        "model.groups.recoupment.max_shortfall_share=1.5",
        "model.groups.sector_shares.bounds.energy=[0,0.6]",
        "model.groups.japan_content.floor=0.3",
        "model.groups.sponsor_cap.max_usd=1.2e10",
        "model.groups.capital.annual_commitment_cap_usd=1.2e10",
        "model.groups.jbic_capacity.per_fiscal_year_usd=5e9",
        "solver.time_limit_s=60",
        "output.report=false",
        "output.scenarios_parquet=false",
    ]
    config = load_config(Path(__file__).parents[2] / "configs" / "default.yaml", sets)
    result = run_plan(config)
    assert result.metrics["status"] == "optimal"
    plan = pd.read_csv(result.out_dir / "plan.csv")
    assert (plan["decline_prob"] > 0.4).all()
    rules = _capital_rules(plan, projects, config)
    assert not _broken(rules)
    f = plan["fund_usd"].to_numpy(float)
    sponsor = projects.loc[plan["project_id"], "sponsor"].to_numpy()
    assert f[sponsor == "one_sponsor"].sum() > 1.2e10 * 1.2  # proposed above the cap
    year = plan["funding_quarter"].str[:4].astype(int).to_numpy()
    assert max(f[year == t].sum() for t in set(year)) > 1.2e10 * 1.2
    binding = [k for k, (v, b, _) in rules.items() if abs(v - b) <= 1e-4 * max(1.0, b)]
    assert binding, rules


__all__ = ["default_run"]  # a fixture, imported so pytest finds it here
