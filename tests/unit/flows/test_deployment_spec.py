"""prefect.yaml points at the real flow, with a valid cron schedule and parameters the flow accepts."""

from __future__ import annotations

import inspect

import yaml
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import load_flow_from_entrypoint


def test_deployment_entrypoint_schedule_and_parameters():
    with open("prefect.yaml", encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    (deployment,) = [entry for entry in spec["deployments"] if entry["name"] == "nightly"]
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert flow.name == "electra-pipeline"
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(deployment["parameters"]) <= accepted
    (schedule,) = deployment["schedules"]
    CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    assert deployment["work_pool"]["name"]


def test_the_tune_deployment_runs_the_tune_flow_with_parameters_it_accepts():
    with open("prefect.yaml", encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    (deployment,) = [entry for entry in spec["deployments"] if entry["name"] == "tune"]
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert flow.name == "electra-tune"
    assert set(deployment["parameters"]) <= set(inspect.signature(flow.fn).parameters)
    assert deployment["work_pool"]["name"]


def test_the_labelling_deployment_runs_one_round_on_a_schedule_with_parameters_it_accepts():
    with open("prefect.yaml", encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    (deployment,) = [entry for entry in spec["deployments"] if entry["name"] == "labelling"]
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert flow.name == "electra-labelling-round"
    accepted = inspect.signature(flow.fn).parameters
    assert set(deployment["parameters"]) <= set(accepted)
    assert {"label_studio_url", "project", "pool", "k"} <= set(deployment["parameters"])
    for name, value in deployment["parameters"].items():  # null: params.yaml's, which is what the flow defaults to
        assert value is not None or accepted[name].default is None, name
    (schedule,) = deployment["schedules"]
    CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    assert deployment["work_pool"]["name"]
