"""Live Rezolus agents: the snapshot wire format, a polling client, and a fake agent that replays a recording.

- `snapshot.decode`: a `/metrics/binary` body (V1/V2/V3) → `Snapshot` of series-keyed `Entry`s (`pieces` holds
  the types and the per-piece validators, `fast` the fast path of well-formed V1/V2 bodies, `schema` the V3
  groups: schema hash, `SchemaCache`, flattening).
- `encode`: V2/V3 bodies and the `/metrics/json` form, as an agent writes them.
- `client.AgentClient`: one background thread polling one agent (`fetch` does its HTTP).
- `recorded.RecordedAgent` + `replay`: `rezgen replay RECORDING`.
"""
