"""What the streams area sends to Redis: its read commands and its one read-only script."""

from __future__ import annotations

READ_COMMANDS = frozenset(
    [
        *("XLEN", "XRANGE", "XREVRANGE", "XPENDING", "XINFO.STREAM", "XINFO.GROUPS", "XINFO.CONSUMERS"),
        *("TYPE", "PTTL"),  # peek's type check; consumers' worker registry keys
        "INFO",  # the server's version, once per Lab: EVAL_RO where Redis has it
    ]
)

# For each group: its name, the entries after its last-delivered id still in the stream (at most ARGV[1]), the
# lag Redis reports (-1 when it reports none: 6.2, or NULL), and the first waiting entry's id. Inside one
# script the reply is consistent: a worker reading between two round trips cannot fake a loss. It sends no
# bodies back and only reads; the connection guard lets exactly this script through (as EVAL_RO on 7.x).
COUNT_SCRIPT = """
local out = {}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, delivered, lag
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1] end
    if group[i] == 'last-delivered-id' then delivered = group[i + 1] end
    if group[i] == 'lag' then lag = group[i + 1] end
  end
  local after = redis.call('XRANGE', KEYS[1], '(' .. delivered, '+', 'COUNT', ARGV[1])
  table.insert(out, name)
  table.insert(out, #after)
  table.insert(out, lag or -1)
  table.insert(out, #after > 0 and after[1][1] or '')
end
return out
"""
