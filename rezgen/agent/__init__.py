"""Live Rezolus agents: the snapshot wire format (decode/encode), a polling client, and a fake agent for replay.

- `snapshot`: decode `/metrics/binary` bodies (V1/V2/V3) into series-keyed entries.
- `schema`: V3 schema hashing and the receiver's schema cache.
- `encode`: V2/V3 encoding, as an agent does it.
- `client`: `AgentClient`, one background thread polling one agent.
- `recorded`, `replay`: a recording served as a live agent (`rezgen replay`).
"""
