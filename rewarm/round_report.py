"""What a retrain reports: its typed result, the decision as Markdown, the demo's table."""

from __future__ import annotations

import re

from rewarm.gate import Decision
from rewarm.results import RoundResult
from rewarm.snapshots import SnapshotInfo
from rewarm.tracking import training_summary


def model_key(name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "model"


def round_summary(
    name: str,
    info: SnapshotInfo,
    decision: Decision,
    version: int,
    replaced: int | None,
    outcomes: dict,
    champion,
    data,
) -> RoundResult:
    """The result of a round that trained: the decision and every model's holdout numbers and cost."""
    strategies = {n: {**o.metrics, **training_summary(o.result)} for n, o in outcomes.items()}
    parent = {f"holdout_{k}": v for k, v in outcomes[decision.winner].metrics.items()}
    parent |= {"rows_train": len(data.train) + len(data.val), "rows_holdout": len(data.holdout)}
    parent |= {f"unknown_{c}": n for c, n in data.unknown_categories().items()}
    if decision.improvement is not None:
        parent |= {
            "improvement": decision.improvement,
            "ci_low": decision.ci_low,
            "ci_high": decision.ci_high,
        }
    parent["train_seconds_total"] = sum(s["train_seconds"] for s in strategies.values())
    if "shrink_perturb" in strategies and "cold" in strategies and not strategies["cold"]["stopped"]:
        sp, cold = strategies["shrink_perturb"], strategies["cold"]
        parent["compute_saved_vs_cold"] = 1.0 - sp["train_seconds"] / max(cold["train_seconds"], 1e-9)
        parent["samples_saved_vs_cold"] = 1.0 - sp["samples_seen"] / max(cold["samples_seen"], 1)
    return RoundResult(
        status="trained",
        model=name,
        model_key=model_key(name),
        snapshot=info.name,
        sha256=info.sha256,
        round=info.sequence,
        decision=decision.action,
        reason=decision.reason,
        winner=decision.winner,
        metric=decision.metric,
        version=version,
        replaced=replaced,
        strategies=strategies,
        champion=champion.metrics if champion is not None else None,
        parent_metrics=parent,
    )


def history_metrics(summary: RoundResult) -> dict[str, float]:
    """What a round adds to the model's history run: each candidate's holdout metric and training seconds, the
    champion's before and after the round, and the compute shrink-perturb saved against cold."""
    metric = summary.metric
    out = {f"{metric}/{name}": s[metric] for name, s in summary.strategies.items() if metric in s}
    out |= {f"train_seconds/{name}": s["train_seconds"] for name, s in summary.strategies.items()}
    before = (summary.champion or {}).get(metric)
    if before is not None:
        out[f"{metric}/champion_before"] = before
    promoted = summary.decision in ("first_model", "promote")
    after = summary.strategies[summary.winner].get(metric) if promoted else before
    if after is not None:
        out[f"{metric}/champion_after"] = after
    for key in ("compute_saved_vs_cold", "train_seconds_total"):
        if key in summary.parent_metrics:
            out[key] = summary.parent_metrics[key]
    return {k: v for k, v in out.items() if v == v}  # no NaN (a holdout of one class): a gap, not a point, in the chart


def decision_markdown(summary: RoundResult, links: dict[str, str] | None = None) -> str:
    """The decision and every model's holdout numbers, for the Prefect UI."""
    metric = summary.metric
    lines = [
        f"# {summary.model}: {summary.decision} (v{summary.version})",
        "",
        summary.reason,
        "",
        f"Snapshot `{summary.snapshot}` (sha256 `{summary.sha256[:12]}`), round {summary.round}.",
        "",
        f"| model | holdout {metric} | train s | epochs | samples seen |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, s in summary.strategies.items():
        label = f"{name} (stopped by the race)" if s.get("stopped") else name
        lines.append(
            f"| {label} | {s[metric]:.4f} | {s['train_seconds']:.1f} | {s['epochs']} | {s['samples_seen']:,} |"
        )
    if summary.champion is not None:
        lines.append(f"| champion (untouched) | {summary.champion[metric]:.4f} | 0 | 0 | 0 |")
    saved = summary.parent_metrics.get("compute_saved_vs_cold")
    if saved is not None:
        lines += ["", f"Training time saved by shrink_perturb versus cold: {saved:.0%}."]
    if links:
        lines += ["", "In MLflow: " + " · ".join(f"[{label}]({url})" for label, url in links.items())]
    return "\n".join(lines)


def demo_table(summaries: list[RoundResult]):
    """Per month: each strategy's holdout metric and training seconds (a raced one marked where it was stopped),
    the decision, and the seconds everything trained."""
    from rich.table import Table

    metric = summaries[0].metric if summaries else "metric"
    names = sorted({n for s in summaries for n in s.strategies}, key=["shrink_perturb", "warm", "cold"].index)
    table = Table(title=f"rewarm demo: holdout {metric} and training seconds per snapshot")
    for col in ["snapshot", "champion before", *[f"{n}" for n in names], "decision", "trained s"]:
        table.add_column(col, justify="left" if col in ("snapshot", "decision") else "right")
    for s in summaries:
        champ = f"{s.champion[metric]:.4f}" if s.champion else "-"
        cells = [_cell(s.strategies.get(n), metric) for n in names]
        total = s.parent_metrics.get("train_seconds_total")
        table.add_row(
            s.snapshot,
            champ,
            *cells,
            f"{s.decision} v{s.version} ({s.winner})",
            "-" if total is None else f"{total:.1f}",
        )
    return table


def _cell(stats: dict | None, metric: str) -> str:
    if stats is None:
        return "-"
    stopped = f" stopped@{stats['epochs']}" if stats.get("stopped") else ""
    return f"{stats[metric]:.4f} / {stats['train_seconds']:.1f}s{stopped}"
