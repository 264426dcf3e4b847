"""A search engine for argilla-server 2.8 that answers from the server's own SQL tables.

Imported ONLY inside the server process (the separate server environment, through
``launch.py``): it imports ``argilla_server`` and SQLAlchemy, and nothing from this toolkit.
Importing it registers the engine under the name ``sqlite``; ``ARGILLA_SEARCH_ENGINE=sqlite``
selects it. It was written for SQLite (``json_extract`` / ``json_each``) as the embedded
server's database.

What Elasticsearch does for Argilla, and how it is done here:

* index operations (create/delete index, index/update/delete records, responses, suggestions,
  metadata and vector mappings) are no-ops: the tables are the index, always up to date;
* ``search``: record search by dataset with the text query (every whitespace-separated term must
  occur, case-insensitively, in the field or in any text field), the filters the API builds
  (record id/external_id/status/dates, metadata terms and ranges, suggestion value/score/agent/
  type, response values per question and response status per user: ``pending`` = no response
  from that user, ``draft``/``submitted``/``discarded`` = a response of theirs with that status),
  sorts (records, metadata, suggestions, responses averaged like ES ``mode: avg``; missing values
  last), offset/limit and the total. Filtering happens in SQL; the matching ids and sort keys are
  ordered in Python;
* queue order: when the API passes ``user_id`` (the ``/me/...`` search the UI uses), records are
  ordered by ``sha256(user_id:record_id)`` (after any explicit sort), a deterministic per-user
  shuffle like the ES engine's ``random_score`` seeded by the user id, so annotators do not all
  rate the same records first. Without ``user_id``: insertion order, then id (stable paging);
* ``get_dataset_progress``: record counts by ``records.status`` (pending/completed);
  ``get_dataset_user_progress``: the user's responses in the dataset by status;
* ``compute_metrics_for``: terms counts or numeric min/max of a metadata property;
* ``similarity_search``: brute-force cosine similarity over the ``vectors`` table.

Never touch lazy relationships of the ORM objects passed in (async SQLAlchemy raises
``MissingGreenlet``): only their column attributes are read; everything else is queried.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime
from typing import Any, Iterable, List, Optional, Union
from uuid import UUID

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy import String, and_, cast, exists, false, func, literal, not_, or_, select, text, true
from sqlalchemy.sql.elements import ColumnElement

from argilla_server.database import AsyncSessionLocal
from argilla_server.enums import MetadataPropertyType, ResponseStatusFilter, SimilarityOrder, SortOrder
from argilla_server.models import (
    Dataset,
    Field,
    MetadataProperty,
    Question,
    Record,
    Response,
    Suggestion,
    User,
    Vector,
    VectorSettings,
)
from argilla_server.settings import settings
from argilla_server.search_engine.base import (
    AndFilter,
    Filter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    MetadataMetrics,
    Order,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)

ENGINE_NAME = "sqlite"


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """WAL (set once on the file by ``launch.py setup``) with ``synchronous=NORMAL``: a commit no
    longer waits for an fsync; still safe against a crash of the server process (only a power
    loss can drop the last transactions)."""
    if not settings.database_is_sqlite:
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()
MAX_TERMS = 2**14
_RECORD_COLUMNS = {
    "id": Record.id,
    "external_id": Record.external_id,
    "inserted_at": Record.inserted_at,
    "updated_at": Record.updated_at,
    "status": Record.status,
}
_SUGGESTION_COLUMNS = {"agent": Suggestion.agent, "type": Suggestion.type}


def _json_path(*names: str) -> str:
    """``$."a"."b"`` — quoted so that any property name works."""
    return "$" + "".join('."' + n.replace("\\", "\\\\").replace('"', '\\"') + '"' for n in names)


def _json_any(json_col, path: str, predicate) -> ColumnElement:
    """True when the JSON value at ``path`` of ``json_col`` (a scalar or an array) has an element
    matching ``predicate``.

    ``json_each(X, P)`` of a scalar yields one row with that scalar, of an array one row per
    item, of a missing path none. (Not ``json_each(json_extract(...))``: ``json_extract`` of a
    string gives SQL text, which is not JSON.)
    """
    each = func.json_each(json_col, path).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(predicate(each.c.value)))


def _as_text(col) -> ColumnElement:
    return cast(col, String)


def _terms_pred(values: List[str]):
    values = [str(v) for v in values]
    return lambda col: _as_text(col).in_(values)


def _range_pred(ge, le):
    def pred(col):
        conds = []
        if ge is not None:
            conds.append(col >= ge)
        if le is not None:
            conds.append(col <= le)
        return and_(true(), *conds)
    return pred


def _coerce_bound(value, column_name: Optional[str] = None):
    if value is None:
        return None
    if column_name in ("inserted_at", "updated_at"):
        if isinstance(value, (int, float)):
            return datetime.utcfromtimestamp(value)
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _sort_value(value: Any):
    """A key that orders numbers, then strings, then anything else, without TypeErrors."""
    if isinstance(value, bool):
        return (0, float(value))
    if isinstance(value, (int, float)):
        return (0, float(value))
    if isinstance(value, datetime):
        return (1, value.isoformat())
    if isinstance(value, str):
        return (1, value)
    return (2, str(value))


def user_shuffle_key(user_id: Any, record_id: Any) -> str:
    """The per-user queue position of a record (deterministic, different for each user)."""
    return hashlib.sha256(f"{user_id}:{record_id}".encode()).hexdigest()


_QUERY_SYNTAX = re.compile(r'[+|"()~*]')


def _query_terms(q: str) -> List[str]:
    terms = []
    for raw in _QUERY_SYNTAX.sub(" ", q).split():
        term = raw.lstrip("-").strip()
        if term:
            terms.append(term)
    return terms


def _like(col, term: str) -> ColumnElement:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(_as_text(col)).like(f"%{escaped.lower()}%", escape="\\")


@SearchEngine.register(engine_name=ENGINE_NAME)
class SQLSearchEngine(SearchEngine):
    """``ARGILLA_SEARCH_ENGINE=sqlite``: search, progress and metrics from the SQL tables."""

    @classmethod
    async def new_instance(cls) -> "SQLSearchEngine":
        return cls()

    async def close(self):
        pass

    async def ping(self) -> bool:
        try:
            async with AsyncSessionLocal() as db:
                await db.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - a ping answers yes or no
            return False

    async def info(self) -> dict:
        async with AsyncSessionLocal() as db:
            version = (await db.execute(text("SELECT sqlite_version()"))).scalar()
        return {"engine": "sql (rlhf embedded)", "backend": "sqlite", "version": version}

    # ------------------------------------------------------------------ index ops: no-ops
    async def create_index(self, dataset: Dataset):
        pass

    async def delete_index(self, dataset: Dataset):
        pass

    async def configure_metadata_property(self, dataset: Dataset, metadata_property: MetadataProperty):
        pass

    async def configure_index_vectors(self, vector_settings: VectorSettings):
        pass

    async def index_records(self, dataset: Dataset, records: Iterable[Record]):
        pass

    async def partial_record_update(self, record: Record, **update):
        pass

    async def delete_records(self, dataset: Dataset, records: Iterable[Record]):
        pass

    async def update_record_response(self, response: Response):
        pass

    async def delete_record_response(self, response: Response):
        pass

    async def update_record_suggestion(self, suggestion: Suggestion):
        pass

    async def delete_record_suggestion(self, suggestion: Suggestion):
        pass

    # ------------------------------------------------------------------ progress and metrics
    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        if dataset.is_draft:
            return {}
        async with AsyncSessionLocal() as db:
            rows = (await db.execute(
                select(Record.status, func.count()).where(Record.dataset_id == dataset.id)
                .group_by(Record.status))).all()
        counts = {str(getattr(status, "value", status)): n for status, n in rows}
        return {"total": sum(counts.values()), **counts}

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        if dataset.is_draft:
            return {}
        async with AsyncSessionLocal() as db:
            rows = (await db.execute(
                select(Response.status, func.count())
                .join(Record, Record.id == Response.record_id)
                .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
                .group_by(Response.status))).all()
        counts = {str(getattr(status, "value", status)): n for status, n in rows}
        return {"total": sum(counts.values()), **counts}

    async def compute_metrics_for(self, metadata_property: MetadataProperty) -> MetadataMetrics:
        path = _json_path(metadata_property.name)
        value = func.json_extract(Record.metadata_, path)
        base = and_(Record.dataset_id == metadata_property.dataset_id, value.isnot(None))
        async with AsyncSessionLocal() as db:
            if metadata_property.type == MetadataPropertyType.terms:
                each = func.json_each(Record.metadata_, path).table_valued("value")
                term = _as_text(each.c.value)
                rows = (await db.execute(
                    select(term, func.count()).select_from(Record).join(each, true()).where(base)
                    .group_by(term).order_by(func.count().desc(), term).limit(MAX_TERMS))).all()
                total = sum(n for _, n in rows)
                return TermsMetrics(total=total, values=[TermsMetrics.TermCount(term=str(t), count=n)
                                                         for t, n in rows])
            lo, hi = (await db.execute(select(func.min(value), func.max(value)).where(base))).one()
        if metadata_property.type == MetadataPropertyType.integer:
            return IntegerMetadataMetrics(min=None if lo is None else int(lo), max=None if hi is None else int(hi))
        return FloatMetadataMetrics(min=None if lo is None else float(lo), max=None if hi is None else float(hi))

    # ------------------------------------------------------------------ filters
    async def _text_condition(self, db, dataset: Dataset, query: Union[TextQuery, str]) -> ColumnElement:
        if isinstance(query, str):
            query = TextQuery(q=query)
        terms = _query_terms(query.q)
        if not terms:
            return true()
        if query.field:
            names = [query.field]
        else:
            names = list((await db.execute(select(Field.name).where(Field.dataset_id == dataset.id))).scalars())
        if not names:
            return false()
        columns = [func.json_extract(Record.fields, _json_path(n)) for n in names]
        return and_(*[or_(*[_like(c, t) for c in columns]) for t in terms])

    def _filter_condition(self, flt: Filter) -> ColumnElement:
        if isinstance(flt, AndFilter):
            return and_(true(), *[self._filter_condition(f) for f in flt.filters])
        scope = flt.scope
        if isinstance(scope, RecordFilterScope):
            column = _RECORD_COLUMNS.get(scope.property)
            if column is None:
                raise ValueError(f"Cannot filter records by property {scope.property!r}")
            if isinstance(flt, TermsFilter):
                values = list(flt.values)
                if scope.property == "id":
                    values = [UUID(str(v)) for v in values]
                return column.in_(values)
            return _range_pred(_coerce_bound(flt.ge, scope.property), _coerce_bound(flt.le, scope.property))(column)
        if isinstance(scope, MetadataFilterScope):
            return _json_any(Record.metadata_, _json_path(scope.metadata_property), self._value_pred(flt))
        if isinstance(scope, SuggestionFilterScope):
            return exists(select(literal(1)).select_from(Suggestion)
                          .join(Question, Question.id == Suggestion.question_id)
                          .where(Suggestion.record_id == Record.id, Question.name == scope.question,
                                 self._suggestion_pred(scope.property, flt)))
        if isinstance(scope, ResponseFilterScope):
            if scope.question:
                conds = [Response.record_id == Record.id,
                         _json_any(Response.values, _json_path(scope.question, "value"), self._value_pred(flt))]
                if scope.user is not None:
                    conds.append(Response.user_id == scope.user.id)
                return exists(select(literal(1)).select_from(Response).where(*conds))
            if scope.property == "status" and isinstance(flt, TermsFilter):
                return self._response_status_condition(list(flt.values), scope.user)
            raise ValueError(f"Cannot process filter scope {scope}")
        raise ValueError(f"Cannot process filter scope {scope}")

    @staticmethod
    def _value_pred(flt: Filter):
        if isinstance(flt, TermsFilter):
            return _terms_pred(flt.values)
        if isinstance(flt, RangeFilter):
            return _range_pred(_coerce_bound(flt.ge), _coerce_bound(flt.le))
        raise ValueError(f"Cannot process filter {flt}")

    def _suggestion_pred(self, prop: str, flt: Filter) -> ColumnElement:
        if prop in _SUGGESTION_COLUMNS:
            column = _SUGGESTION_COLUMNS[prop]
            if isinstance(flt, TermsFilter):
                return _as_text(column).in_([str(v) for v in flt.values])
            return _range_pred(_coerce_bound(flt.ge), _coerce_bound(flt.le))(column)
        if prop == "value":
            return _json_any(Suggestion.value, "$", self._value_pred(flt))
        if prop == "score":
            return _json_any(Suggestion.score, "$", self._value_pred(flt))
        raise ValueError(f"Cannot filter suggestions by property {prop!r}")

    @staticmethod
    def _response_status_condition(values: List[str], user: Optional[User]) -> ColumnElement:
        values = [str(getattr(v, "value", v)) for v in values]
        conds = []
        by_user = [Response.record_id == Record.id]
        if user is not None:
            by_user.append(Response.user_id == user.id)
        if ResponseStatusFilter.pending.value in values:
            conds.append(not_(exists(select(literal(1)).select_from(Response).where(*by_user))))
        others = [v for v in values if v != ResponseStatusFilter.pending.value]
        if others:
            conds.append(exists(select(literal(1)).select_from(Response)
                                .where(*by_user, _as_text(Response.status).in_(others))))
        return or_(false(), *conds)

    # ------------------------------------------------------------------ sorting
    def _sort_expression(self, order: Order):
        scope = order.scope
        if isinstance(scope, RecordFilterScope):
            column = _RECORD_COLUMNS.get(scope.property)
            if column is None:
                raise ValueError(f"Cannot sort records by property {scope.property!r}")
            return column
        if isinstance(scope, MetadataFilterScope):
            return func.json_extract(Record.metadata_, _json_path(scope.metadata_property))
        if isinstance(scope, SuggestionFilterScope):
            if scope.property in _SUGGESTION_COLUMNS:
                value = _SUGGESTION_COLUMNS[scope.property]
            else:
                value = getattr(Suggestion, scope.property if scope.property in ("value", "score") else "value")
                value = func.json_extract(value, "$")
            return (select(value).select_from(Suggestion).join(Question, Question.id == Suggestion.question_id)
                    .where(Suggestion.record_id == Record.id, Question.name == scope.question)
                    .limit(1).scalar_subquery())
        if isinstance(scope, ResponseFilterScope):
            conds = [Response.record_id == Record.id]
            if scope.user is not None:
                conds.append(Response.user_id == scope.user.id)
            if scope.question:
                agg = func.avg(func.json_extract(Response.values, _json_path(scope.question, "value")))
            else:
                agg = func.min(_as_text(getattr(Response, scope.property or "status")))
            return select(agg).where(*conds).scalar_subquery()
        raise ValueError(f"Cannot sort by scope {scope}")

    @staticmethod
    def _order_rows(rows: list, sort: List[Order], user_id: Any) -> list:
        if user_id is not None:
            rows.sort(key=lambda r: user_shuffle_key(user_id, r[0]))
        else:
            rows.sort(key=lambda r: (_sort_value(r[1]), str(r[0])))
        for i in reversed(range(len(sort))):
            col = 2 + i
            desc = str(getattr(sort[i].order, "value", sort[i].order)) == SortOrder.desc.value
            present = [r for r in rows if r[col] is not None]
            missing = [r for r in rows if r[col] is None]
            present.sort(key=lambda r: _sort_value(r[col]), reverse=desc)  # stable, also reversed
            rows = present + missing
        return rows

    # ------------------------------------------------------------------ search
    async def search(
        self,
        dataset: Dataset,
        query: Optional[Union[TextQuery, str]] = None,
        filter: Optional[Filter] = None,
        sort: Optional[List[Order]] = None,
        offset: int = 0,
        limit: int = 100,
        user_id: Optional[Any] = None,
    ) -> SearchResponses:
        sort = list(sort or [])
        columns = [Record.id, Record.inserted_at] + [self._sort_expression(o) for o in sort]
        async with AsyncSessionLocal() as db:
            stmt = select(*columns).where(Record.dataset_id == dataset.id)
            if query is not None:
                stmt = stmt.where(await self._text_condition(db, dataset, query))
            if filter is not None:
                stmt = stmt.where(self._filter_condition(filter))
            rows = [tuple(r) for r in (await db.execute(stmt)).all()]
        rows = self._order_rows(rows, sort, user_id)
        offset = max(0, int(offset or 0))
        page = rows[offset:offset + max(0, int(limit))]
        score = 1.0 if query is not None else None
        return SearchResponses(items=[SearchResponseItem(record_id=r[0], score=score) for r in page],
                               total=len(rows))

    async def similarity_search(
        self,
        dataset: Dataset,
        vector_settings: VectorSettings,
        value: Optional[List[float]] = None,
        record: Optional[Record] = None,
        query: Optional[Union[TextQuery, str]] = None,
        filter: Optional[Filter] = None,
        max_results: int = 100,
        order: SimilarityOrder = SimilarityOrder.most_similar,
        threshold: Optional[float] = None,
    ) -> SearchResponses:
        if bool(value) == bool(record):
            raise ValueError("Must provide either vector value or record to compute the similarity search")
        async with AsyncSessionLocal() as db:
            if not value:
                value = (await db.execute(select(Vector.value).where(
                    Vector.record_id == record.id, Vector.vector_settings_id == vector_settings.id))).scalar()
            if not value:
                raise ValueError("Cannot find a vector value to apply with provided info")
            stmt = (select(Record.id, Vector.value).join(Vector, Vector.record_id == Record.id)
                    .where(Record.dataset_id == dataset.id, Vector.vector_settings_id == vector_settings.id))
            if record is not None:
                stmt = stmt.where(Record.id != record.id)
            if query is not None:
                stmt = stmt.where(await self._text_condition(db, dataset, query))
            if filter is not None:
                stmt = stmt.where(self._filter_condition(filter))
            rows = (await db.execute(stmt)).all()
        target = [float(x) for x in value]
        if order == SimilarityOrder.least_similar:
            target = [-x for x in target]
        norm_t = math.sqrt(sum(x * x for x in target)) or 1.0
        scored = []
        for rid, vec in rows:
            norm_v = math.sqrt(sum(float(x) * float(x) for x in vec)) or 1.0
            cosine = sum(a * float(b) for a, b in zip(target, vec)) / (norm_t * norm_v)
            score = (1.0 + cosine) / 2.0  # what ES reports for cosine similarity
            if threshold is None or score >= threshold:
                scored.append((score, rid))
        scored.sort(key=lambda s: (-s[0], str(s[1])))
        scored = scored[:max_results]
        return SearchResponses(items=[SearchResponseItem(record_id=rid, score=s) for s, rid in scored],
                               total=len(scored))
