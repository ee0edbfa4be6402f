"""Live Rezolus agents, a source: the snapshot wire format and a polling client.

- `snapshot.decode`: a `/metrics/binary` body (V1/V2/V3) → `Snapshot` of series-keyed `Entry`s (`pieces` holds
  the types and the per-piece validators, `fast` the fast path of well-formed V1/V2 bodies, `schema` the V3
  groups: schema hash, `SchemaCache`, flattening).
- `client.AgentClient`: one background thread polling one agent (`fetch` does its HTTP).

The fake agent that replays a recording (`rezgen replay`) is in `rezgen.synthetic`.
"""
