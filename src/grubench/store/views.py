"""The MLflow UI view a sweep opens on: its evaluation runs grouped by arm and condition.

MLflow's UI (3.17) restores a saved runs view from the address parameter
``viewStateShareKey=<key>``: it reads the experiment tag ``mlflow.sharedViewState.<key>``, which
its "Save view" button writes as an envelope ``{"name", "createdAt", "updatedAt", "state"}``
whose ``state`` is the JSON of the runs page's search facets (``searchFilter``, ``orderByKey``,
...) merged with its UI state (``selectedColumns``, ``groupBy``, ``compareRunCharts``, ...).
The UI fills in every field left out from its defaults; ``runsExpanded``, ``runsPinned``,
``runsHidden`` and ``runsVisibilityMap`` are never restored from a shared view. The view mode
(table or charts) is the address parameter ``compareRunsMode`` (``TABLE``, ``CHART``).

A sweep writes its view when it starts (:func:`write_sweep_view`), so the address that
``grubench ui`` prints (:func:`ui_address`) shows each configuration's evaluation runs as one
group with its mean final scores, and the chart view draws each group's learning curves.
"""

from __future__ import annotations

import json
import re
import time

from grubench.store.schema import (
    ARM,
    CONDITION,
    EVAL,
    NOTE,
    PARAM_COUNT,
    POINT,
    ROLE,
    SOLVED,
    STAGE,
    STEPS,
    SWEEP,
    TEST_SCORE,
    TIME_PER_STEP,
)

VIEW_TAG_PREFIX = "mlflow.sharedViewState."
# the final scores every child logs (tasks add their objective, e.g. test/mse)
SCORE_COLUMNS = (TEST_SCORE, SOLVED, STEPS, TIME_PER_STEP, PARAM_COUNT)


def view_key(sweep: str) -> str:
    """The share key of ``sweep``'s view, e.g. ``grubench-gru_vs_lstm-quick``: safe in an
    address and in a tag key."""
    return "grubench-" + re.sub(r"[^A-Za-z0-9_-]+", "-", sweep)


def _metric(name: str) -> str:
    return f"metrics.`{name}`"


def sweep_view_state(sweep: str, objectives: list[str], cells: list[tuple[str, str]]) -> dict:
    """The runs page state that shows ``sweep``'s evaluation runs grouped by arm and
    condition (``cells``: the sweep's (arm, condition) pairs; by arm alone when no condition
    is named), one collapsed row per group with its mean final scores, and each group's mean
    learning curves; ``objectives`` are the tasks' objective metrics (e.g. ``["mse"]``)."""
    keys = [ARM, CONDITION] if any(condition for _, condition in cells) else [ARM]
    score_columns = [TEST_SCORE, *[f"test/{o}" for o in objectives], *SCORE_COLUMNS[1:]]
    curves, finals = "grubench-curves", "grubench-final"
    line = {
        "type": "LINE", "runsCountToCompare": 10, "deleted": False, "isGenerated": False,
        "lineSmoothness": 0, "xAxisScaleType": "linear",
        "scaleType": "linear", "xAxisKey": "step", "selectedXAxisMetricKey": "",
        "yAxisKey": "metric", "yAxisExpressions": [], "ignoreOutliers": False,
        "useGlobalXaxisKey": True, "useGlobalLineSmoothing": True,
    }  # fmt: skip
    bar = {"type": "BAR", "runsCountToCompare": 10, "deleted": False, "isGenerated": False}
    curve_metrics = [*[f"val/{o}" for o in objectives], "val/loss", "train/loss"]
    charts = [
        {**line, "uuid": f"{curves}-{i}", "metricSectionId": curves, "metricKey": name}
        for i, name in enumerate(dict.fromkeys(curve_metrics))
    ] + [
        {**bar, "uuid": f"{finals}-{i}", "metricSectionId": finals, "metricKey": name}
        for i, name in enumerate(score_columns[:-2])  # scores, solved, steps
    ]
    by = " and ".join(k.removeprefix("grubench.") for k in keys)
    columns = [*[_metric(c) for c in score_columns], f"tags.`{POINT}`"]
    return {
        # search facets: the sweep's evaluation runs
        "searchFilter": f"tags.`{SWEEP}` = '{sweep}' and tags.`{STAGE}` = '{EVAL}'",
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "modelVersionFilter": "All Runs",
        "datasetsFilter": [],
        # UI state: one group per configuration, its mean over seeds in the group's row
        "groupBy": {
            "aggregateFunction": "average",
            "groupByKeys": [{"mode": "tag", "groupByData": key} for key in keys],
        },
        # the UI names a group by "<mode>.<tag>.<value>" of each key, joined by commas
        "groupsExpanded": {
            ",".join(f"tag.{key}.{value}" for key, value in zip(keys, cell)): False
            for cell in cells
        },
        "useGroupedValuesInCharts": True,
        "selectedColumns": columns,
        "columnOrder": ["attributes.`Run Name`", *columns],
        "columnWidths": {"attributes.`Run Name`": 440},  # wide enough for a group's name
        "runsHiddenMode": "SHOW_ALL",
        "compareRunSections": [
            {
                "uuid": curves,
                "name": f"Learning curves (mean of each {by})",
                "display": True,
                "isReordered": False,
                "deleted": False,
                "isGenerated": False,
            },
            {
                "uuid": finals,
                "name": "Final scores (test split)",
                "display": True,
                "isReordered": False,
                "deleted": False,
                "isGenerated": False,
            },
        ],  # fmt: skip
        "compareRunCharts": charts,
        "isAccordionReordered": True,  # keep these two sections first
        "hideEmptyCharts": True,
        "viewMaximized": False,
        "runListHidden": False,
        "globalLineChartConfig": {
            "xAxisKey": "step",
            "lineSmoothness": 0,
            "selectedXAxisMetricKey": "",
        },  # fmt: skip
    }


def view_name(sweep: str, cells: list[tuple[str, str]]) -> str:
    by = "arm and condition" if any(condition for _, condition in cells) else "arm"
    return f"grubench {sweep}: evaluation runs by {by}"


def write_sweep_view(client, experiment_id: str, sweep: str, objectives: list[str],
                     cells: list[tuple[str, str]]) -> str:  # fmt: skip
    """Write (or refresh) ``sweep``'s view as a saved view of the experiment, in the format
    MLflow's "Save view" writes; returns its share key."""
    key = view_key(sweep)
    now = int(time.time() * 1000)
    created = now
    old = client.get_experiment(experiment_id).tags.get(VIEW_TAG_PREFIX + key)
    if old:
        try:
            created = int(json.loads(old)["createdAt"])
        except (ValueError, KeyError, TypeError):
            pass
    state = json.dumps(sweep_view_state(sweep, objectives, cells))
    envelope = {"name": view_name(sweep, cells), "createdAt": created,
                "updatedAt": now, "state": state}  # fmt: skip
    client.set_experiment_tag(experiment_id, VIEW_TAG_PREFIX + key, json.dumps(envelope))
    return key


def latest_view_key(client, experiment) -> tuple[str, str] | None:
    """(share key, sweep) of the experiment's newest sweep that has a view, or None."""
    parents = client.search_runs(
        [experiment.experiment_id], f"tags.`{ROLE}` = 'parent'", max_results=50,
        order_by=["attributes.start_time DESC"],
    )  # fmt: skip
    for run in parents:
        sweep = run.data.tags.get(SWEEP, "")
        if VIEW_TAG_PREFIX + view_key(sweep) in experiment.tags:
            return view_key(sweep), sweep
    return None


def latest_parent(client, experiment_id: str, sweep: str):
    """The newest parent run of ``sweep`` that carries the report as its description."""
    runs = client.search_runs(
        [experiment_id],
        f"tags.`{ROLE}` = 'parent' and tags.`{SWEEP}` = '{sweep}'",
        max_results=50, order_by=["attributes.start_time DESC"],
    )  # fmt: skip
    described = [r for r in runs if r.data.tags.get(NOTE)]
    return (described or runs or [None])[0]
