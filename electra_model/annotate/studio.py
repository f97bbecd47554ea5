"""Label Studio over its REST API, with plain ``urllib``: its SDK pins would fight the project's lock, and the few
calls ``electra annotate`` makes (find or create a project, import tasks, export them, annotate) are each one
request::

    studio = LabelStudio("http://127.0.0.1:8080", token)
    project = studio.ensure_project("electra-ner", label_config)
    studio.import_tasks(project, [{"data": {"text": "..."}, "predictions": [...]}])
    tasks = studio.export(project)            # every task, with its annotations

A server that does not answer, or answers 401, is a user error naming the URL and the command that fixes it.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from electra_model.errors import ElectraError

TOKEN_VARIABLE = "LABEL_STUDIO_API_KEY"
TOKEN_FILE = "api-token"  # written by `make label-studio` (electra_model.annotate.server) into its data_dir
START_COMMAND = "make label-studio"


def find_token(data_dir: Path) -> str:
    """``LABEL_STUDIO_API_KEY``, else the token the project's own server was started with (``data_dir/api-token``)."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if token:
        return token
    path = data_dir / TOKEN_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    raise ElectraError(
        f"no Label Studio API token: set {TOKEN_VARIABLE} (Label Studio: Account & Settings > Legacy Token) or start "
        f"the project's server with `{START_COMMAND}`, which writes {path}"
    )


class LabelStudio:
    """One Label Studio server, by URL and API token (legacy ``Token`` authentication)."""

    def __init__(self, url: str, token: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        """One JSON request; the server's answer as JSON (``None`` when empty)."""
        address = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(
            address,
            data=None if body is None else json.dumps(body).encode("utf-8"),
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 (http(s) only)
                payload = response.read()
        except urllib.error.HTTPError as error:
            raise self._refused(error, method, path) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise ElectraError(
                f"Label Studio at {self.url} does not answer ({reason}); start it with `{START_COMMAND}` or set "
                "annotate.url in params.yaml to where it runs"
            ) from None
        return json.loads(payload) if payload else None

    def _refused(self, error: urllib.error.HTTPError, method: str, path: str) -> ElectraError:
        if error.code in (401, 403):
            return ElectraError(
                f"Label Studio at {self.url} refused the API token (HTTP {error.code}); set {TOKEN_VARIABLE} to the "
                "token under Account & Settings > Legacy Token, or restart the project's server with "
                f"`{START_COMMAND}`"
            )
        detail = error.read().decode("utf-8", "replace")[:300].replace("\n", " ")
        return ElectraError(f"Label Studio at {self.url}: {method} {path} failed with HTTP {error.code}: {detail}")

    # ------------------------------------------------------------------------------------------------ projects
    def find_project(self, title: str) -> int | None:
        """The id of the project titled ``title``, if there is one (titles are not unique in Label Studio: the
        oldest wins, so a rerun always finds the same project)."""
        page, found = 1, []
        while True:
            answer = self.call("GET", "/api/projects", query={"title": title, "page": page, "page_size": 100})
            found += [project["id"] for project in answer["results"] if project["title"] == title]
            if not answer.get("next"):
                return min(found) if found else None
            page += 1

    def ensure_project(self, title: str, label_config: str) -> int:
        """The project titled ``title`` with ``label_config``, created or updated to it."""
        project = self.find_project(title)
        if project is None:
            return int(self.call("POST", "/api/projects", {"title": title, "label_config": label_config})["id"])
        self.call("PATCH", f"/api/projects/{project}", {"label_config": label_config})
        return project

    def require_project(self, title: str) -> int:
        """The project titled ``title``, or an error naming it and how to make it."""
        project = self.find_project(title)
        if project is None:
            raise ElectraError(
                f"Label Studio at {self.url} has no project {title!r}; push texts to it first "
                "(`electra annotate push --texts FILE`) or name another with --project"
            )
        return project

    # --------------------------------------------------------------------------------------------------- tasks
    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> int:
        """Add ``tasks`` (data, and predictions or annotations) to ``project``; how many were added."""
        return int(self.call("POST", f"/api/projects/{project}/import", tasks)["task_count"])

    def export(self, project: int) -> list[dict[str, Any]]:
        """Every task of ``project`` with its annotations (cancelled ones too), in the order they were imported."""
        tasks = self.call("GET", f"/api/projects/{project}/export", query={"exportType": "JSON", "download_all_tasks": "true"})
        return sorted(tasks, key=lambda task: task["id"])

    def task_ids(self, project: int) -> list[int]:
        """The ids of ``project``'s tasks, in import order."""
        return [task["id"] for task in self.export(project)]

    def annotate(self, task: int, result: list[dict[str, Any]], cancelled: bool = False) -> int:
        """Submit an annotation of ``task`` as an annotator would (``cancelled``: the annotator skipped it)."""
        body = {"result": result, "was_cancelled": cancelled}
        return int(self.call("POST", f"/api/tasks/{task}/annotations", body)["id"])
