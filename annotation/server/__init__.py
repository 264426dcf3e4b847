"""Embedded Argilla server: argilla-server 2.8 without Docker, Elasticsearch or a Redis install.

Pieces: :mod:`.env` (the server's own virtual environment, ``make test`` creates it),
:mod:`.embedded` (:class:`EmbeddedServer`: Redis, migrations, owner user, API server, worker,
pid files), :mod:`.launch` (run with the server environment's python) and :mod:`.sql_engine`
(a ``SearchEngine`` that answers from the server's SQLite tables; imported only inside the
server process). CLI: ``rlhf annotate serve | status | stop | users add``.

What a client of this server should know about argilla-server 2.8 (learned building it):

* Start cost: importing ``argilla_server`` takes 5 s on an idle machine (15 s on a loaded
  2-CPU one: it imports pandas, ``datasets``, elasticsearch and opensearch clients), so a start
  is ~10-20 s. Start one server per test session (``tests/integration/conftest.py``), not one
  per test. ``EmbeddedServer.start()`` on a data dir whose server already runs reuses it.
* Default workspace ``argilla`` exists and holds the owner; ``add_user(name, workspace=W)``
  creates W if missing and adds the user to it. Annotators see only their workspaces' datasets.
* The SDK's record ``id`` is the server's ``external_id``; the server's own ids are UUIDs.
  ``PUT /api/v1/datasets/{id}/records/bulk`` (``records.log``) upserts by external_id first,
  so re-logging the same ids updates in place, never duplicates.
* Record status (``pending``/``completed``) lives in ``records.status`` and is recomputed
  synchronously in the same request that creates/updates/deletes a response
  (``contexts.distribution.update_record_status``, ``min_submitted`` of the dataset's
  ``TaskDistribution``): progress is consistent as soon as the response call returns. Changing a
  dataset's distribution later recomputes statuses in the background worker (rq job).
* Annotator queue, as the UI asks for it: ``POST /api/v1/me/datasets/{id}/records/search`` with
  filters ``response.status in [pending]`` (per user: no response of theirs) AND
  ``record.status in [pending]``: a record that reached ``min_submitted`` leaves everyone's
  pending queue. Order is a per-user deterministic shuffle (``sha256(user_id:record_id)``),
  stable across calls and pages. Responses: ``POST /api/v1/records/{record_id}/responses`` with
  ``{"values": {"question": {"value": v}}, "status": "submitted"}`` (409 if that user already
  answered: update with ``PUT /api/v1/responses/{response_id}``); ``discarded`` needs no values.
  Concurrent annotators can over-annotate a record past ``min_submitted`` (no lock between
  "fetch queue" and "submit"): aggregate all submitted responses, do not assume exactly N.
* ``include`` query parameter accepts only ``responses``, ``suggestions``, ``vectors``.
  Metadata properties are listed at ``GET /api/v1/me/datasets/{id}/metadata-properties``;
  metadata with ``visible_for_annotators=False`` is stripped from annotators' ``/me`` search
  results (fine for a hidden A/B mapping) but returned to the owner.
* Text search here is substring AND-of-terms, case-insensitive (not ES full-text: no stemming,
  no scoring); filters, sorts, totals, progress and metadata metrics behave as with ES.
* One uvicorn process on SQLite (WAL): ~5-10 responses/s with several concurrent annotators on
  a loaded 2-CPU machine; bulk ``records.log`` of 300 short records ~10 s there.
* The API key header is ``X-Argilla-Api-Key``; ``/api/v1/status`` needs no auth (health).
  Logins (``POST /api/v1/token``) survive restarts: the JWT secret is persisted in the data dir.
"""

from __future__ import annotations

__all__ = ["EmbeddedServer", "ensure_server_env"]


def __getattr__(name):
    if name == "EmbeddedServer":
        from annotation.server.embedded import EmbeddedServer
        return EmbeddedServer
    if name == "ensure_server_env":
        from annotation.server.env import ensure_server_env
        return ensure_server_env
    raise AttributeError(name)
