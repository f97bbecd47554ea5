"""prefect.yaml points at the real flows, with valid cron schedules and parameters each flow accepts."""

from __future__ import annotations

import inspect
from typing import Any

import yaml
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import Flow, load_flow_from_entrypoint


def deployment_and_flow(name: str) -> tuple[dict[str, Any], Flow]:
    """prefect.yaml's deployment ``name``, checked to name a work pool and parameters its flow accepts, and the flow."""
    with open("prefect.yaml", encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    (deployment,) = [entry for entry in spec["deployments"] if entry["name"] == name]
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert set(deployment["parameters"]) <= set(inspect.signature(flow.fn).parameters)
    assert deployment["work_pool"]["name"]
    for schedule in deployment.get("schedules", []):
        CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    return deployment, flow


def test_deployment_entrypoint_schedule_and_parameters():
    deployment, flow = deployment_and_flow("nightly")
    assert flow.name == "electra-pipeline"
    assert len(deployment["schedules"]) == 1


def test_the_tune_deployment_runs_the_tune_flow_with_parameters_it_accepts():
    _, flow = deployment_and_flow("tune")
    assert flow.name == "electra-tune"


def test_the_labelling_deployment_runs_one_round_on_a_schedule_with_parameters_it_accepts():
    deployment, flow = deployment_and_flow("labelling")
    assert flow.name == "electra-labelling-round"
    assert len(deployment["schedules"]) == 1
    assert {"label_studio_url", "project", "pool", "k"} <= set(deployment["parameters"])
    accepted = inspect.signature(flow.fn).parameters
    for name, value in deployment["parameters"].items():  # null: params.yaml's, which is what the flow defaults to
        assert value is not None or accepted[name].default is None, name
