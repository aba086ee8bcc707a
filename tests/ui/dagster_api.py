"""What a test waits on in a running Dagster: its GraphQL API, the one the UI itself reads. The
browser is for seeing and clicking; conditions (runs started, partitions filled) are read here,
each wait bounded."""

from __future__ import annotations

import json
import urllib.request

from tests.kit.waiting import poll_until

RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs { results { runId status tags { key value } } }
    ... on PythonError { message }
  }
}"""

PARTITIONS = """
query Partitions($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      partitionKeysByDimension { name partitionKeys }
      partitionStats { numMaterialized numPartitions numFailed numMaterializing }
    }
  }
}"""

UNFINISHED = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED"]


class DagsterAPI:
    """The webserver at `url` (http://host:port), through /graphql."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, query: str, **variables) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer["errors"]
        return answer["data"]

    def runs(self, statuses: list[str] | None = None, **tags: str) -> list[dict]:
        """Runs (newest first), each with its tags as a dict."""
        run_filter: dict = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
        if statuses:
            run_filter["statuses"] = statuses
        result = self.query(RUNS, filter=run_filter)["runsOrError"]
        assert "results" in result, result
        return [{**r, "tags": {t["key"]: t["value"] for t in r["tags"]}} for r in result["results"]]

    def run_status(self, run_id: str) -> str:
        (run,) = [r for r in self.runs() if r["runId"] == run_id]
        return run["status"]

    def partitions(self, asset: str) -> dict:
        """{"keys": [keys], "stats": {numMaterialized, numPartitions, ...}} of a one-dimension
        partitioned asset."""
        node = self.query(PARTITIONS, path=[asset])["assetNodeOrError"]
        (dimension,) = node["partitionKeysByDimension"]
        return {"keys": dimension["partitionKeys"], "stats": node["partitionStats"]}

    def wait_for_runs(self, what: str, timeout: float, statuses: list[str], **tags: str) -> list:
        """Until some run with `tags` has one of `statuses`; returns those runs."""
        found: list[dict] = []

        def seen() -> bool:
            found[:] = self.runs(statuses, **tags)
            return bool(found)

        poll_until(seen, what, timeout=timeout, every=0.5)
        return found


CHECK_EXECUTIONS = """
query Checks($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 100) {
    status
    evaluation {
      partition
      metadataEntries {
        label
        ... on IntMetadataEntry { intValue }
        ... on FloatMetadataEntry { floatValue }
      }
    }
  }
}"""


def check_executions(api: DagsterAPI, asset: str, check: str) -> list[dict]:
    """Each evaluation of `check`: its partition and its numeric metadata ({label: number})."""
    executions = api.query(CHECK_EXECUTIONS, path=[asset], check=check)["assetCheckExecutions"]
    found = []
    for execution in executions:
        evaluation = execution["evaluation"] or {}
        numbers = {
            m["label"]: m.get("intValue", m.get("floatValue"))
            for m in evaluation.get("metadataEntries", [])
            if m.get("intValue") is not None or m.get("floatValue") is not None
        }
        found.append({"partition": evaluation.get("partition"), "numbers": numbers})
    return found
