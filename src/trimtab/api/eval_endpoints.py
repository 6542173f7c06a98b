"""The dataset and eval-run operations of the control-plane API, declared once (api/schema.py)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field
from typing_extensions import TypedDict  # pydantic reads typing's only on Python >= 3.12

from trimtab.api import eval_views as ev
from trimtab.api import models as m
from trimtab.api.endpoints import LIMIT, ROUTES_APPLY_BYTES, TENANT
from trimtab.api.params import bad_param
from trimtab.api.schema import (
    Body,
    Endpoint,
    Param,
    choice,
    parse_version,
    text,
    version,
    window,
)
from trimtab.types import OPERATORS, READERS

# -- datasets -----------------------------------------------------------------------------

DATASET = text("dataset", "The dataset's name", where="path")
DATASET_TENANT = text(
    "tenant",
    "Whose dataset NAME is: a tenant's (a non-admin may name only its own), empty for the "
    "shared one; absent: the caller's tenant's, else the shared one",
    keep_empty=True,
)


def _dataset_version(value: str | None) -> int | None:
    """'3' or 'v3' -> 3; 'latest' -> None (the newest)."""
    if value == "latest":
        return None
    if value is None or not re.fullmatch(r"v?[0-9]{1,9}", value) or int(value.lstrip("v")) < 1:
        raise bad_param("version", f"'{value}' is not a version like 3, v3 or latest")
    return parse_version("version", value)


DATASET_VERSION = Param(
    "version",
    "path",
    "The version, as 3, v3 or latest",
    {"type": "string", "pattern": r"^(latest|v?[0-9]{1,9})$", "examples": ["v3", "3", "latest"]},
    _dataset_version,
)

PUSH_DATASET = Endpoint(
    "POST",
    "/api/datasets/{dataset}/versions",
    "pushDataset",
    "datasets",
    "Push a JSONL or CSV file as the dataset's next version (none when the items are unchanged)",
    OPERATORS,
    ev.DatasetPushed,
    params=(DATASET,),
    body=Body(m.DatasetPush, max_bytes=m.DATASET_PUSH_BYTES),
    description=(
        "400 invalid_dataset: every bad row, one per line of the message, each naming the "
        "line and the field; nothing is stored. A non-admin pushes to its own tenant; an "
        "admin may name a tenant (empty: shared)."
    ),
)
LIST_DATASETS = Endpoint(
    "GET",
    "/api/datasets",
    "listDatasets",
    "datasets",
    "Each dataset's newest version: the caller's tenant's and the shared ones",
    READERS,
    ev.DatasetList,
    params=(TENANT,),
)
LIST_DATASET_VERSIONS = Endpoint(
    "GET",
    "/api/datasets/{dataset}",
    "listDatasetVersions",
    "datasets",
    "A dataset's versions, oldest first",
    READERS,
    ev.DatasetVersions,
    params=(DATASET, DATASET_TENANT),
    errors=(404,),
)
GET_DATASET_VERSION = Endpoint(
    "GET",
    "/api/datasets/{dataset}/versions/{version}",
    "getDatasetVersion",
    "datasets",
    "One version of a dataset with its items, in order",
    READERS,
    ev.DatasetVersionDetail,
    params=(
        DATASET_VERSION,
        DATASET,
        DATASET_TENANT,
    ),
    errors=(404,),
)
DIFF_DATASET = Endpoint(
    "GET",
    "/api/datasets/{dataset}/diff",
    "diffDataset",
    "datasets",
    "The ids of the items added, removed and changed between two versions",
    READERS,
    ev.DatasetDiffView,
    params=(
        version("from", "The older version (default: the one before `to`)"),
        version("to", "The newer version (default: the newest)"),
        DATASET,
        DATASET_TENANT,
    ),
    errors=(404,),
)

# -- eval runs ----------------------------------------------------------------------------

EVAL_RUN = text("run", "The run's id", where="path")

CREATE_EVAL_RUN = Endpoint(
    "POST",
    "/api/evals/runs",
    "createEvalRun",
    "evals",
    "Start an eval run: a suite's pinned dataset version against a route version or a model",
    OPERATORS,
    ev.EvalRunDetail,
    status=201,
    body=Body(m.EvalRunCreate),
    errors=(404,),
    description=(
        "400 invalid_suite: every problem of the definition, one per line, naming the key. "
        "404: the dataset, its version, the route or its version is not there. The runner "
        "(`trimtab eval run`) then sends the items through /v1/chat/completions and "
        "records their results here."
    ),
)
LIST_EVAL_RUNS = Endpoint(
    "GET",
    "/api/evals/runs",
    "listEvalRuns",
    "evals",
    "Eval runs, newest first",
    READERS,
    ev.EvalRunList,
    params=(text("suite", "Only runs of this suite"), TENANT, LIMIT),
)
GET_EVAL_RUN = Endpoint(
    "GET",
    "/api/evals/runs/{run}",
    "getEvalRun",
    "evals",
    "A run, with each scorer's mean and pass rate and their 95% intervals",
    READERS,
    ev.EvalRunDetail,
    params=(EVAL_RUN,),
    errors=(404,),
)
LIST_EVAL_RESULTS = Endpoint(
    "GET",
    "/api/evals/runs/{run}/results",
    "listEvalResults",
    "evals",
    "A run's per-item results, in the dataset's order",
    READERS,
    ev.EvalResultList,
    params=(EVAL_RUN,),
    errors=(404,),
)
RECORD_EVAL_RESULTS = Endpoint(
    "POST",
    "/api/evals/runs/{run}/results",
    "recordEvalResults",
    "evals",
    "Record items' results; an item the run already holds is left as it is",
    OPERATORS,
    ev.EvalRecorded,
    params=(EVAL_RUN,),
    body=Body(m.EvalResultsIn, max_bytes=m.EVAL_RESULTS_BYTES),
    errors=(404,),
)
LOOKUP_EVAL_CACHE = Endpoint(
    "POST",
    "/api/evals/runs/{run}/cache",
    "lookupEvalCache",
    "evals",
    "Earlier answers from this run's target to these request bodies (by SHA-256)",
    OPERATORS,
    ev.EvalCacheHits,
    params=(EVAL_RUN,),
    body=Body(m.EvalCacheLookup),
    errors=(404,),
)
COMPARE_EVAL_RUNS = Endpoint(
    "GET",
    "/api/evals/runs/{run}/compare",
    "compareEvalRuns",
    "evals",
    "The paired comparison of this (candidate) run against a baseline run, and the verdict",
    READERS,
    ev.EvalComparison,
    params=(
        EVAL_RUN,
        text(
            "baseline",
            "The baseline run's id (default: the newest complete earlier run of the suite)",
        ),
    ),
    errors=(404, 409),
    description=(
        "Paired by item id over the items both runs' datasets hold; the candidate's suite "
        "gives the scorers and the gate. 409: a run is incomplete (resume it first)."
    ),
)

# -- applied suites -----------------------------------------------------------------------


class EvalSuitesApply(TypedDict):
    message: Annotated[str, Field(min_length=1, max_length=m.APPLY_MESSAGE_CHARS)]
    yaml: Annotated[str, Field(description="the text of a file with an `evals:` section")]
    source: NotRequired[Annotated[str, Field(min_length=1, max_length=m.SOURCE_CHARS)]]


class AppliedSuiteView(TypedDict):
    suite: str
    tenant: str | None
    status: Literal["created", "updated", "unchanged"]
    digest: str


class EvalSuitesApplied(TypedDict):
    suites: list[AppliedSuiteView]
    message: str


class EvalSuiteView(TypedDict):
    suite: str
    tenant: str | None
    definition: Annotated[dict[str, Any], Field(description="as under its name in `evals:`")]
    digest: str
    created_at: str
    created_by: str | None
    updated_at: str
    updated_by: str | None


class EvalSuiteList(TypedDict):
    data: list[EvalSuiteView]


EVAL_SUITE = text("suite", "The suite's name", where="path")
SUITE_TENANT = text(
    "tenant",
    "Whose suites: a tenant's (a non-admin may name only its own), empty for the shared "
    "ones; absent: the caller's tenant's (an admin: every scope)",
    keep_empty=True,
)

APPLY_EVAL_SUITES = Endpoint(
    "POST",
    "/api/evals/suites/apply",
    "applyEvalSuites",
    "evals",
    "Apply the `evals:` section of a file: each changed suite is replaced",
    OPERATORS,
    EvalSuitesApplied,
    body=Body(EvalSuitesApply, max_bytes=ROUTES_APPLY_BYTES),
    description=(
        "400 invalid_suite: every problem, each naming the file and the key (a route the "
        "store does not have among them; an online python scorer whose module the server's "
        "evals.python_scorers does not name, or that does not import); nothing is stored. "
        "The file's other sections are left to their endpoints. A non-admin's suites are its "
        "tenant's; an admin's shared."
    ),
)
LIST_EVAL_SUITES = Endpoint(
    "GET",
    "/api/evals/suites",
    "listEvalSuites",
    "evals",
    "The applied suites, by name",
    READERS,
    EvalSuiteList,
    params=(text("route", "Only the suites of this route"), SUITE_TENANT),
)
GET_EVAL_SUITE = Endpoint(
    "GET",
    "/api/evals/suites/{suite}",
    "getEvalSuite",
    "evals",
    "One applied suite: the caller's tenant's, else the shared one of that name",
    READERS,
    EvalSuiteView,
    params=(EVAL_SUITE, SUITE_TENANT),
    errors=(404,),
)


class EvalRunAttest(TypedDict):
    baseline: NotRequired[
        Annotated[str, Field(description="the baseline run (default: the newest earlier one)")]
    ]


class EvalAttestationView(TypedDict):
    route: str
    version: int
    by: str
    kind: Literal["eval"]
    result: Literal["pass", "fail"]
    manual: Literal[False]
    run_id: str
    baseline_run_id: str
    suite: str
    tags: list[str]
    dataset: str
    dataset_version: int
    digest: str
    url: None


ATTEST_EVAL_RUN = Endpoint(
    "POST",
    "/api/evals/runs/{run}/attestation",
    "attestEvalRun",
    "evals",
    "Write the run's route version's `eval` attestation from its gate verdict",
    OPERATORS,
    EvalAttestationView,
    status=201,
    params=(EVAL_RUN,),
    body=Body(EvalRunAttest, allow_empty=True),
    errors=(404, 409),
    description=(
        "The verdict is the paired comparison against the baseline run, computed here from "
        "the stored results, and the attestation is linked to the run (suite, its tags, the "
        "dataset version, the digest the run called). From risk tier 2 up the release gate "
        "counts only these: every suite of the route tagged golden or safety needs a "
        "passing one on the candidate's digest. 409 no_verdict: too many failed items or "
        "nothing to compare, nothing written; 409 not_a_route_run: the run ran a model."
    ),
)


class DatasetFromRequests(TypedDict):
    route: Annotated[str, Field(min_length=1, max_length=256)]
    version: NotRequired[Annotated[str, Field(description="only this version's, as v2 or 2")]]
    feedback: NotRequired[Literal["negative"]]
    status: NotRequired[Literal["error"]]
    since: NotRequired[Annotated[str, Field(description="how far back, as 7d, 12h or 30m")]]
    limit: NotRequired[Annotated[int, Field(ge=1, le=10_000)]]
    message: NotRequired[Annotated[str, Field(min_length=1, max_length=m.APPLY_MESSAGE_CHARS)]]
    tenant: NotRequired[Annotated[str, Field(max_length=m.TENANT_CHARS)]]


class DatasetHarvested(ev.DatasetPushed):
    considered: Annotated[int, Field(description="recorded requests read")]
    added: Annotated[int, Field(description="new items in this version")]
    duplicates: Annotated[int, Field(description="inputs already held or seen in a newer one")]
    unusable: Annotated[int, Field(description="requests without a stored, readable input")]


DATASET_FROM_REQUESTS = Endpoint(
    "POST",
    "/api/datasets/{dataset}/from-requests",
    "addDatasetFromRequests",
    "datasets",
    "Recorded requests of a route into the dataset's next version (the newest one's items "
    "and the new inputs)",
    OPERATORS,
    DatasetHarvested,
    params=(DATASET,),
    body=Body(DatasetFromRequests),
    errors=(404,),
    description=(
        "Each request's variables (or messages) become an item's input and its answer "
        "`metadata.observed`; deduplicated by input; a request whose body was not stored, "
        "was redacted or hashed is counted as unusable. Eval runs' own calls are never "
        "read. A non-admin reads its own tenant's requests and adds to its own dataset. "
        "404: no request gave an item and the dataset does not exist."
    ),
)


class OnlineScoreBucket(TypedDict):
    version: str | None
    suite: Annotated[str, Field(description="the suite that scored (its name)")]
    suite_tenant: Annotated[
        str | None, Field(description="the suite's tenant; null for a shared suite")
    ]
    scorer: str
    # "from" is a keyword: the functional form would be needed for it; named `start` here
    start: Annotated[str, Field(description="the bucket's start (requests started then on)")]
    scored: int
    mean: float
    pass_rate: float


class OnlineScoresView(TypedDict):
    route: str
    window: str
    bucket: str
    data: list[OnlineScoreBucket]
    scorer: Annotated[
        dict[str, int],
        Field(description="this process's online scorer since it started: read, sampled, "
              "scored, unusable (sampled without a stored answer, or a score that failed), "
              "dropped_queue, dropped_budget, dropped_cost (the judges' day's spend)"),
    ]  # fmt: skip


ONLINE_SCORES = Endpoint(
    "GET",
    "/api/evals/online",
    "getOnlineScores",
    "evals",
    "A route's online scores (suites with `online:`) per version, suite, scorer and time bucket",
    READERS,
    OnlineScoresView,
    params=(
        text("route", "The route"),
        window("24h", "How far back"),
        choice("bucket", "The time bucket", ("5m", "15m", "1h", "6h", "1d"), "1h"),
        TENANT,
        text("suite", "Only the scores of the suites of this name (absent: every suite's)"),
    ),
)
