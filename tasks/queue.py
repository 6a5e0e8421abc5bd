"""A task that keeps a deployment's queue tidy during catch-up."""

from __future__ import annotations

from prefect import get_run_logger, task

from .snapshot import IN_MEMORY


@task(name="cancel-queued-runs", **IN_MEMORY)
def cancel_queued(handled: set[str]) -> None:
    """Cancel this deployment's queued runs for snapshots this run has just handled (in a burst, each landed
    file queued its own run): otherwise each would start a process only to find its snapshot done."""
    from prefect.runtime import deployment, flow_run

    if deployment.id is None:
        return  # not a deployment run: nothing is queued behind it
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Cancelled

    queued = FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
    )
    note = f"its snapshot was handled by flow run {flow_run.name} ({flow_run.id}), which came first in landing order"
    try:
        with get_client(sync_client=True) as client:
            for run in client.read_flow_runs(flow_run_filter=queued):
                if run.parameters.get("sha256") in handled and str(run.id) != str(flow_run.id):
                    # Not forced: a run the runner has meanwhile begun to start keeps going (and skips its snapshot).
                    result = client.set_flow_run_state(run.id, Cancelled(message=note))
                    if result.status == SetStateStatus.ACCEPT:
                        get_run_logger().info("cancelled queued run %s: %s", run.name, note)
    except Exception as exc:  # an optimisation only: a run left queued skips its snapshot when it starts
        get_run_logger().warning("could not cancel queued runs already handled here: %s", exc)
