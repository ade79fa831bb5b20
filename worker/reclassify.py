"""Re-label stored articles with another model version: the plan ``newsclass reclassify`` makes
(which articles, which versions, how many jobs), the work behind the task
``newsclass.reclassify_articles`` and the summary ``newsclass reclassify --wait`` prints.

No Celery here: the task decodes the message and owns the retries; this module reads the stored
texts, classifies them in one vectorised call and switches the articles to the model's version in
one transaction, keeping every earlier version's labels (``article_label``) queryable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from classifiers import LABELS, TopicModel, model_text
from worker.ingest import RejectedInput
from worker.names import RECLASSIFY_TASK
from worker.pipeline import assigned_labels, classification_fields
from worker.store import (
    ArticleVersion,
    JobOutcome,
    Relabel,
    finished_job_ids,
    get_articles,
    record_jobs,
    relabel_articles,
)

MAX_ARTICLES_PER_JOB = 10_000


@dataclass(frozen=True, slots=True)
class ReclassifyRequest:
    """One reclassify job: these articles, with the model at ``model_path`` (None: the workers'
    configured model), which must be ``model_version`` when the sender names one."""

    article_ids: tuple[int, ...]
    model_path: str | None = None
    model_version: str | None = None

    def payload(self) -> dict[str, Any]:
        """The task's one JSON object."""
        payload: dict[str, Any] = {"article_ids": list(self.article_ids)}
        if self.model_path is not None:
            payload["model_path"] = self.model_path
        if self.model_version is not None:
            payload["model_version"] = self.model_version
        return payload


@dataclass(frozen=True, slots=True)
class ReclassifyPlan:
    """Which of the selected articles a model would re-label, and the jobs that do it."""

    selected: int
    todo: tuple[ArticleVersion, ...]  # the selected articles not at model_version yet
    model_version: str
    model_path: str
    batch_size: int

    def summary(self) -> dict[str, Any]:
        """What ``--dry-run`` prints (as JSON, or in one sentence)."""
        return {
            "selected": self.selected,
            "to_reclassify": len(self.todo),
            "already": self.selected - len(self.todo),
            "model_version": self.model_version,
            "model_path": self.model_path,
            "from_versions": version_counts(self.todo),
            "jobs": -(-len(self.todo) // self.batch_size),
        }

    def requests(self, *, model_path: str | None) -> list[ReclassifyRequest]:
        """One request per ``batch_size`` articles, in the selection's order; ``model_path`` is the
        model the jobs name (None: the workers' configured model)."""
        size = self.batch_size
        return [
            ReclassifyRequest(
                tuple(a.id for a in self.todo[i : i + size]),
                model_path=model_path,
                model_version=self.model_version,
            )
            for i in range(0, len(self.todo), size)
        ]


def plan_reclassify(
    selected: Sequence[ArticleVersion], *, model_version: str, model_path: str, batch_size: int
) -> ReclassifyPlan:
    """The plan for re-labelling ``selected`` with the model ``model_version`` (at
    ``model_path``): articles already at that version are left alone."""
    return ReclassifyPlan(
        selected=len(selected),
        todo=tuple(a for a in selected if a.model_version != model_version),
        model_version=model_version,
        model_path=model_path,
        batch_size=batch_size,
    )


def version_counts(articles: Sequence[ArticleVersion]) -> dict[str, int]:
    """How many of the articles each model version labelled, by version."""
    return dict(sorted(Counter(a.model_version for a in articles).items()))


def parse_request(payload: object) -> ReclassifyRequest:
    """The request in a message, or ``RejectedInput`` saying what is wrong with it."""
    if not isinstance(payload, dict):
        raise RejectedInput(
            f"a reclassify job is one JSON object with article_ids, not {type(payload).__name__}"
        )
    unknown = sorted(set(payload) - {"article_ids", "model_path", "model_version"})
    if unknown:
        raise RejectedInput(f"unknown field(s) in a reclassify job: {', '.join(unknown)}")
    ids = payload.get("article_ids")
    if not isinstance(ids, list) or not ids:
        raise RejectedInput("article_ids must be a non-empty list of article ids")
    if not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        raise RejectedInput("article_ids must hold positive integers only")
    if len(ids) > MAX_ARTICLES_PER_JOB:
        raise RejectedInput(
            f"{len(ids)} article ids in one job: at most {MAX_ARTICLES_PER_JOB} (send batches)"
        )
    path = payload.get("model_path")
    if path is not None:
        if not isinstance(path, str) or not path.strip():
            raise RejectedInput("model_path must be a path (a string)")
        if not (PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute()):
            raise RejectedInput(f"model_path must be an absolute path on the workers: {path!r}")
    version = payload.get("model_version")
    if version is not None and (not isinstance(version, str) or not version):
        raise RejectedInput("model_version must be a model version (a string)")
    return ReclassifyRequest(tuple(dict.fromkeys(ids)), model_path=path, model_version=version)


@dataclass(frozen=True, slots=True)
class ReclassifyResult:
    requested: int
    relabelled: int  # switched to the model's version now
    already: int  # already at the model's version: left alone
    missing: int  # no such article (deleted since it was selected)
    labels_changed: int  # relabelled articles whose labels differ from their previous version's

    def describe(self, version: str) -> str:
        """The job's recorded reason: what it did, for ``newsclass jobs``."""
        text = f"reclassified {self.relabelled} of {self.requested} articles with {version}"
        text += f" ({self.labels_changed} with other labels than before"
        text += f", {self.already} already at it" if self.already else ""
        text += f", {self.missing} missing" if self.missing else ""
        return text + ")"


def reclassify(
    article_ids: Sequence[int], *, session: Session, model: TopicModel
) -> ReclassifyResult:
    """Classify the stored texts of the articles not yet at the model's version in one call and
    make the new classification current. Does not commit."""
    articles = get_articles(session=session, article_ids=article_ids)
    todo = [a for a in articles if a.model_version != model.version]
    predictions = model.predict([model_text(a.title or "", a.text) for a in todo]) if todo else []
    relabel_articles(
        session=session,
        items=[
            Relabel(
                article_id=int(article.id or 0),
                fields=classification_fields(prediction, model.version),
                labels=assigned_labels(prediction),
            )
            for article, prediction in zip(todo, predictions, strict=True)
        ],
    )
    return ReclassifyResult(
        requested=len(set(article_ids)),
        relabelled=len(todo),
        already=len(articles) - len(todo),
        missing=len(set(article_ids)) - len(articles),
        labels_changed=sum(
            set(a.labels) != set(p.labels) for a, p in zip(todo, predictions, strict=True)
        ),
    )


def process_reclassify(
    job_id: str,
    request: ReclassifyRequest,
    *,
    engine: Engine,
    model: TopicModel,
    attempts: int = 1,
) -> JobOutcome | None:
    """Reclassify and record the job's outcome in one transaction; a job that already has an
    outcome (a redelivered message) is skipped (None). Database errors propagate."""
    with Session(engine) as session:
        if finished_job_ids(session=session, job_ids=[job_id]):
            return None
    with Session(engine) as session, session.begin():
        result = reclassify(request.article_ids, session=session, model=model)
        outcome = JobOutcome(
            job_id=job_id,
            status="reclassified",
            reason=result.describe(model.version),
            attempts=attempts,
            task=RECLASSIFY_TASK,
        )
        record_jobs(session=session, outcomes=[outcome])
    return outcome


def summarise(
    before: Sequence[ArticleVersion],
    after: Mapping[int, ArticleVersion],
    *,
    model_version: str,
    selected: int | None = None,
) -> dict[str, Any]:
    """What a reclassification did to the articles sent (``before``: as selected; ``after``: as
    stored now): versions before, how many reached ``model_version``, and label changes."""
    done = [b for b in before if b.id in after and after[b.id].model_version == model_version]
    labels: dict[str, dict[str, int]] = {}
    for label in LABELS:
        had = {b.id for b in done if label in b.labels}
        has = {b.id for b in done if label in after[b.id].labels}
        labels[label] = {
            "before": len(had),
            "after": len(has),
            "gained": len(has - had),
            "lost": len(had - has),
        }
    return {
        "selected": len(before) if selected is None else selected,
        "sent": len(before),
        "model_version": model_version,
        "already": (len(before) if selected is None else selected) - len(before),
        "from_versions": version_counts(before),
        "reclassified": len(done),
        "pending": len(before) - len(done),
        "labels_changed": sum(set(b.labels) != set(after[b.id].labels) for b in done),
        "labels": labels,
    }
