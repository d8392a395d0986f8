"""The public ledger API: checkpoints, entries and proofs. It holds no personal data."""

from __future__ import annotations

import base64

from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate

from vault import ledger
from vault.errors import InvalidValue, NotFound
from web.state import unit_of_work

bp = Blueprint("ledger", __name__)


class EntriesQuery(Schema):
    start = fields.Integer(required=True, validate=validate.Range(min=0))
    end = fields.Integer(required=True, validate=validate.Range(min=1))


class InclusionQuery(Schema):
    index = fields.Integer(required=True, validate=validate.Range(min=0))
    tree_size = fields.Integer(required=True, validate=validate.Range(min=1))


class ConsistencyQuery(Schema):
    from_ = fields.Integer(required=True, data_key="from", validate=validate.Range(min=1))
    to = fields.Integer(required=True, validate=validate.Range(min=1))


def _args(schema: Schema) -> dict[str, int]:
    try:
        loaded = schema.load(request.args.to_dict())
    except ValidationError as exc:
        names = ", ".join(sorted(str(k) for k in exc.normalized_messages()))
        raise InvalidValue(f"Give whole numbers (0 or more) for: {names}.") from None
    return dict(loaded)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _no_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/checkpoint")
def checkpoint() -> Response:
    """The newest signed checkpoint, as a C2SP signed note (signing a fresh one if stale)."""
    with unit_of_work() as (session, vault):
        latest = ledger.latest_checkpoint(session)
        if latest is None or latest.size < ledger.head_size(session):
            latest = ledger.make_checkpoint(session, vault)
    if latest is None:
        raise NotFound("The ledger is empty, so there is no checkpoint yet.")
    return _no_cache(Response(latest.note, mimetype="text/plain"))


@bp.get("/public-key")
def public_key() -> Response:
    """The note verifier key for checkpoints."""
    with unit_of_work() as (_session, vault):
        key = ledger.verifier_key(vault)
    return Response(key + "\n", mimetype="text/plain")


@bp.get("/entries")
def entries() -> Response:
    """Leaves from ``start`` to ``end - 1``, exactly as hashed (at most 1,000 a page)."""
    args = _args(EntriesQuery())
    with unit_of_work() as (session, _vault):
        found = ledger.entries(session, args["start"], args["end"])
    return _no_cache(
        jsonify({"entries": [{"index": i, "leaf": leaf.decode("utf-8")} for i, leaf in found]})
    )


@bp.get("/proof/inclusion")
def inclusion() -> Response:
    """An RFC 9162 inclusion proof, with the leaf hash and the root it proves against."""
    args = _args(InclusionQuery())
    with unit_of_work() as (session, _vault):
        path = ledger.inclusion_proof(session, args["index"], args["tree_size"])
        root = ledger.root_at(session, args["tree_size"])
        (leaf,) = ledger.entries(session, args["index"], args["index"] + 1)
    from vault.merkle import leaf_hash

    return _no_cache(
        jsonify(
            {
                "index": args["index"],
                "tree_size": args["tree_size"],
                "leaf_hash": _b64(leaf_hash(leaf[1])),
                "root_hash": _b64(root),
                "inclusion_path": [_b64(h) for h in path],
            }
        )
    )


@bp.get("/proof/consistency")
def consistency() -> Response:
    """An RFC 9162 consistency proof between two tree sizes, with both roots."""
    args = _args(ConsistencyQuery())
    with unit_of_work() as (session, _vault):
        path = ledger.consistency_proof(session, args["from_"], args["to"])
        old_root = ledger.root_at(session, args["from_"])
        new_root = ledger.root_at(session, args["to"])
    return _no_cache(
        jsonify(
            {
                "from": args["from_"],
                "to": args["to"],
                "from_root_hash": _b64(old_root),
                "to_root_hash": _b64(new_root),
                "consistency_path": [_b64(h) for h in path],
            }
        )
    )
